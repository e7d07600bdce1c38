import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lmcourse
from lmcourse import ckpt, data, viz

ROOT = Path(__file__).resolve().parents[1]


def test_import_does_not_load_torch_or_matplotlib():
    """import lmcourse 要快：torch、matplotlib 等到第一次用时才导入（只检查这一点，不对时间断言）。"""
    code = "import sys, lmcourse; print(sorted(m for m in ('torch', 'matplotlib', 'transformers') if m in sys.modules))"
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "[]"


def test_set_seed_checks_input():
    with pytest.raises(TypeError, match="seed"):
        lmcourse.set_seed("0")
    with pytest.raises(ValueError, match="seed"):
        lmcourse.set_seed(-1)


@pytest.mark.parametrize("cuda", [False, True])
def test_get_device_follows_cuda_availability(monkeypatch, cuda):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert lmcourse.get_device() == torch.device("cuda" if cuda else "cpu")


def test_font_renders_chinese_without_missing_glyphs():
    import warnings

    import matplotlib.pyplot as plt

    viz.setup_fonts()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing" 会变成异常
        fig, ax = plt.subplots()
        ax.set_title("语言模型：困惑度随训练步数下降")
        ax.set_xlabel("字")
        fig.canvas.draw()
        plt.close(fig)
    from matplotlib import font_manager

    assert Path(font_manager.findfont(viz.FONT_NAME)).name == viz.FONT_PATH.name


def test_font_covers_all_corpus_characters():
    from fontTools.ttLib import TTFont

    from lmcourse import data

    cmap = TTFont(viz.FONT_PATH).getBestCmap()
    chars = set("".join(data.peoples_daily_texts("all")))
    missing = [c for c in chars if c.isprintable() and not c.isspace() and ord(c) not in cmap]
    assert not missing, missing[:20]
    assert (viz.FONT_PATH.parent / "OFL.txt").exists()


def test_heatmap_and_curves_check_labels():
    with pytest.raises(ValueError, match="xlabels"):
        viz.heatmap([[1, 2], [3, 4]], xlabels=["一"])
    with pytest.raises(ValueError, match="matrix"):
        viz.heatmap([1, 2, 3])
    with pytest.raises(TypeError, match="curves"):
        viz.plot_curves([1, 2])
    with pytest.raises(ValueError, match="长度不同"):
        viz.plot_curves({"甲": ([1, 2], [1])})
    ax = viz.heatmap([[0.2, 0.8], [0.5, 0.5]], xlabels="我们", ylabels="你好", annotate=True)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["我", "们"]


@pytest.mark.parametrize("name", ckpt.NAMES)
def test_checkpoints_are_documented_and_load(name):
    meta = ckpt.info(name)
    for key in ("config", "command", "train_seconds", "metrics", "data", "vocab_hash"):
        assert key in meta
    assert meta["command"] == f"python -m lmcourse.ckpt {name}"
    state, _ = ckpt.load_state(name)
    assert all(v.dtype != __import__("torch").float16 for v in state.values())
    size = sum(p.stat().st_size for p in ckpt.DIR.glob("*.pt"))
    assert size < 60e6                                   # DESIGN.md：随包的检查点合计约 60 MB 以内


def test_ckpt_bad_name():
    with pytest.raises(ValueError, match="name"):
        ckpt.info("gpt5")


def test_chapter_headers_are_generated():
    code = subprocess.call([sys.executable, str(ROOT / "tools" / "chapter_header.py"), "--check"])
    assert code == 0, "运行 python tools/chapter_header.py 更新各章开头"


def test_toc_lists_every_chapter():
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    for nb in (ROOT / "chapters").glob("*.ipynb"):
        assert f"chapters/{nb.stem}" in toc, nb.name


def test_notebooks_have_no_bad_stored_outputs():
    for nb_path in (ROOT / "chapters").glob("*.ipynb"):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                assert out.get("output_type") != "error", nb_path.name
                text = "".join(out.get("text", ""))
                assert "Glyph" not in text and "Warning" not in text, (nb_path.name, text[:200])


def test_space_between_chinese_and_latin():
    code = subprocess.call([sys.executable, str(ROOT / "tools" / "check_spacing.py")])
    assert code == 0, "中文与英文、数字之间要加空格：见上面列出的位置"


def test_checkpoint_vocab_check():
    from lmcourse.text import CharTokenizer

    with pytest.raises(ValueError, match="nnlm"):
        ckpt.load_state("nnlm", CharTokenizer(["甲", "乙"]))
    state, meta = ckpt.load_state("nnlm", data.lm_tokenizer())
    assert meta["name"] == "nnlm" and state


def test_appendix_throughput_numbers_come_from_the_benchmark():
    """附录里的吞吐量数字与 tools/bench_pretrain.py 写下的 book/bench_pretrain.json 一致。"""
    bench = json.loads((ROOT / "book" / "bench_pretrain.json").read_text())
    page = (ROOT / "book" / "appendix_cluster.md").read_text(encoding="utf-8")
    expected = [f"{bench['old_step']['tokens_per_second']:,.0f}", f"{bench['new_step']['tokens_per_second']:,.0f}",
                f"{bench['speedup']:.1f} 倍", f"{100 * bench['old_step']['pad_fraction']:.0f}%",
                f"{bench['ddp_1_process']['tokens_per_second']:,.0f}", f"{bench['ddp_2_processes']['tokens_per_second']:,.0f}"]
    prec = bench["precision"]
    for model in ("bert", "gpt"):
        expected += [f"{prec[model + '_fp32']['tokens_per_second']:,.0f}", f"{prec[model + '_bf16']['tokens_per_second']:,.0f}",
                     f"{prec[model + '_fp32']['valid_loss']:.4f} / {prec[model + '_bf16']['valid_loss']:.4f}"]
    assert bench["cpu"]["bf16_instructions"] is True                  # 正文：这台机器的 CPU 有 bf16 指令
    for text in expected:
        assert text in page, text
    assert not re.search(r"@[A-Z_]+@", page), "附录里还有没填的占位符"


def test_chapters_have_no_unfilled_placeholders():
    for nb_path in (ROOT / "chapters").glob("*.ipynb"):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            assert not re.search(r"@[A-Z_]+@", "".join(cell["source"])), nb_path.name


def test_checkpoint_table_on_the_data_page_matches_the_records():
    page = (ROOT / "book" / "data.md").read_text(encoding="utf-8")
    m = {name: ckpt.info(name)["metrics"] for name in ckpt.NAMES}
    for text in (f"困惑度 {m['nnlm']['test_ppl']:.1f}", f"困惑度 {m['lstm_lm']['test_ppl']:.1f}",
                 f"前向 {m['elmo']['test_ppl_forward']:.1f}，后向 {m['elmo']['test_ppl_backward']:.1f}",
                 f"被遮字困惑度 {m['bert_news']['test_mlm_ppl']:.1f}，准确率 {100 * m['bert_news']['test_mlm_acc']:.1f}%",
                 f"AUC {m['bert_sentiment']['test_auc']:.3f}", f"困惑度 {m['gpt_news']['test_ppl']:.1f}",
                 f"AUC {m['gpt_sentiment']['test_auc']:.3f}",
                 f"被预测字困惑度 {m['xlnet_news']['test_plm_ppl']:.1f}，准确率 {100 * m['xlnet_news']['test_plm_acc']:.1f}%",
                 f"AUC {m['xlnet_sentiment']['xlnet']:.3f}（BERT {m['xlnet_sentiment']['bert']:.3f}）",
                 f"被遮字困惑度 {m['ernie_news']['test_mlm_ppl']:.1f}，准确率 {100 * m['ernie_news']['test_mlm_acc']:.1f}%",
                 f"情感 AUC {m['ernie_tasks']['sentiment_ernie']:.3f}（BERT {m['ernie_tasks']['sentiment_bert']:.3f}），"
                 f"实体 F1 {m['ernie_tasks']['ner_ernie']:.3f}（BERT {m['ernie_tasks']['ner_bert']:.3f}）",
                 f"AUC：LSTM {m['frozen_sentiment']['lstm_test_auc']:.3f}，ELMo {m['frozen_sentiment']['elmo_test_auc']:.3f}"):
        assert text in page, text


def test_training_time_spread_on_the_data_page_matches_the_records():
    """数据说明页说训练用时只能当作大概：每两次评估之间的速度（步/秒）前后起伏的倍数，从检查点的记录里重算。"""
    page = (ROOT / "book" / "data.md").read_text(encoding="utf-8")
    names = ("nnlm", "lstm_lm", "elmo", "bert_news", "gpt_news", "xlnet_news", "ernie_news")
    rates = {}
    for name in names:
        h, prev = ckpt.info(name)["history"], (0, 0.0)
        rates[name] = []
        for r in h:
            rates[name].append((r["step"] - prev[0]) / (r["seconds"] - prev[1]))
            prev = (r["step"], r["seconds"])
    spread = {name: max(v) / min(v) for name, v in rates.items()}
    assert min(spread, key=spread.get) == "ernie_news" and max(spread, key=spread.get) == "bert_news"
    seconds = {name: ckpt.info(name)["train_seconds"] for name in ("ernie_news", "bert_news")}
    for text in (f"{spread['ernie_news']:.1f} 倍（`ernie_news`）", f"{spread['bert_news']:.1f} 倍（`bert_news`",
                 f"每秒 {min(rates['bert_news']):.2f} 步到 {max(rates['bert_news']):.2f} 步",
                 f"{seconds['ernie_news']:,.0f} 秒对 {seconds['bert_news']:,.0f} 秒"):
        assert text in page, text


def test_every_number_in_the_prose_has_a_source():
    code = subprocess.call([sys.executable, str(ROOT / "tools" / "check_numbers.py")])
    assert code == 0, "正文里有数字找不到出处（见上面的列表）"


def test_number_check_catches_a_planted_wrong_number(tmp_path):
    # 一章里打印的是 0.917，正文写成 0.927：检查要报出来；改对、或者写成四舍五入后的 0.92 就通过
    sys.path.insert(0, str(ROOT / "tools"))
    import check_numbers

    def chapter(text):
        return {"cells": [{"cell_type": "code", "source": ["print(auc)"], "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": ["测试集 AUC 0.9174，48.2% 的字猜对，用了 6144000 个字\n"]}]},
                          {"cell_type": "markdown", "source": [text]}]}

    assert check_numbers.unexplained(chapter("测试集 AUC 0.927。"), {}) == [(1, "0.927")]
    assert check_numbers.unexplained(chapter("AUC 0.917、0.92，猜对 48.2%，约 614 万个字。"), {}) == []
    assert check_numbers.unexplained(chapter("第 7 章，2018 年，$x^{3.5}$，`lr=0.3`。"), {}) == []
    assert check_numbers.unexplained(chapter("论文里是 33 亿词。"), {"33": "论文"}) == []


def test_best_time_measures_and_checks_its_arguments():
    import time as _time

    from lmcourse.timing import best_time

    t = best_time(lambda: _time.sleep(0.002), min_run_time=0.05)
    assert 0.0015 < t < 0.05
    with pytest.raises(TypeError, match="fn"):
        best_time(3)
    with pytest.raises(ValueError, match="min_run_time"):
        best_time(lambda: None, min_run_time=0)
    with pytest.raises(ValueError, match="threads"):
        best_time(lambda: None, threads=0)
    import torch

    seen = []
    best_time(lambda: seen.append(torch.get_num_threads()), min_run_time=0.01, threads=2)
    assert set(seen) == {2}                                  # 计时时真的用了所要的线程数（Timer 默认只用 1 个）


def test_chapter_times_on_the_how_to_use_page_come_from_the_benchmark():
    """“如何使用本书”的用时表与 make bench 写下的 book/bench_chapters.json 一致（预算由 make bench 自己检查，计时不进测试）。"""
    bench = json.loads((ROOT / "book" / "bench_chapters.json").read_text(encoding="utf-8"))
    page = (ROOT / "book" / "how_to_use.md").read_text(encoding="utf-8")
    stems = sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb"))
    assert sorted(bench["seconds"]) == stems, "book/bench_chapters.json 没有覆盖全部章节：请运行 make bench"
    rows = {int(m.group(1)): int(m.group(2)) for m in re.finditer(r"^\| (\d+)\. [^|]+\|[^|]+\| (\d+) 秒 \|", page, re.M)}
    assert rows == {i + 1: round(bench["seconds"][s]) for i, s in enumerate(stems)}
    assert f"{round(bench['total'] / 60, 1)} 分钟" in page
    assert max(bench["seconds"].values()) <= 60 and bench["total"] <= 600   # 记下的用时在预算之内


def test_each_chapter_has_one_title_and_a_learning_goals_section():
    """第 1 个单元是唯一的一级标题（网页的章名），正文各节从二级标题开始，“学习目标”是一节。"""
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        md = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
        assert re.fullmatch(r"# \S.*", md[0].strip()), nb_path.name
        h1 = [line for text in md for line in text.splitlines() if re.match(r"# ", line)]
        assert len(h1) == 1, (nb_path.name, h1)
        assert any(re.search(r"^## 学习目标", text, re.M) for text in md), nb_path.name


def cpu_dependent_cells_without_asserts(nb):
    """标了 cpu-dependent 的单元：输出依赖 CPU，nbval 不逐字比对（要同时标 nbval-ignore-output），
    所以它的结论必须由一个带余量的 assert 守住：在它自己或紧接着的代码单元里。返回不合规的单元号。"""
    code = [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    bad = []
    for k, (i, cell) in enumerate(code):
        tags = cell.get("metadata", {}).get("tags", [])
        if "cpu-dependent" not in tags:
            continue
        here = "".join(cell["source"])
        after = "".join(code[k + 1][1]["source"]) if k + 1 < len(code) else ""
        if "nbval-ignore-output" not in tags or not re.search(r"^\s*assert ", here + "\n" + after, re.M):
            bad.append(i)
    return bad


def test_cpu_dependent_cells_are_ignored_by_nbval_and_asserted():
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        assert cpu_dependent_cells_without_asserts(nb) == [], nb_path.name
    planted = {"cells": [{"cell_type": "code", "metadata": {"tags": ["cpu-dependent"]}, "source": ["assert 1"]},
                         {"cell_type": "code", "metadata": {"tags": ["cpu-dependent", "nbval-ignore-output"]},
                          "source": ["print(loss)"]}]}
    assert cpu_dependent_cells_without_asserts(planted) == [0, 1]


def test_package_data_covers_every_non_python_file():
    """安装后的 lmcourse（Colab 上就是这样）要带上字体、检查点和交互图的前端模块：pyproject 的 package-data 得覆盖它们。"""
    import fnmatch
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]["lmcourse"]
    tracked = subprocess.run(["git", "ls-files", "lmcourse"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    data_files = [Path(f).relative_to("lmcourse").as_posix() for f in tracked
                  if not f.endswith(".py") and "/data/" not in f and not f.endswith(".md")]
    missing = [f for f in data_files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert "static/explorers.js" in data_files and missing == [], missing


def test_num_threads_is_kept_apart_from_the_seed_and_restored_by_with():
    import torch

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    lmcourse.set_seed(3)
    assert torch.get_num_threads() == before                 # 种子不碰线程数
    with pytest.raises(RuntimeError, match="出错"):
        with lmcourse.num_threads(other):
            assert torch.get_num_threads() == other
            raise RuntimeError("出错")
    assert torch.get_num_threads() == before                 # 出错也恢复
    lmcourse.num_threads(other)                              # 直接调用：一直有效
    try:
        assert torch.get_num_threads() == other
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="n"):
        lmcourse.num_threads(0)


CONFIGS = [("lmcourse.models.bert", "BertConfig"), ("lmcourse.models.elmo", "ELMoConfig"),
           ("lmcourse.models.ernie", "KnowledgeFusionConfig"), ("lmcourse.models.gpt", "GPTConfig"),
           ("lmcourse.models.nnlm", "NNLMConfig"), ("lmcourse.models.rnn", "RNNLMConfig"),
           ("lmcourse.models.xlnet", "XLNetConfig"), ("lmcourse.finetune", "FineTuneConfig")]


@pytest.mark.parametrize("module,name", CONFIGS)
def test_config_json_round_trip_and_validation(module, name):
    """每个配置：asdict → JSON → from_dict 得到相等的配置；未知字段、错误取值都报中文错误。"""
    import dataclasses
    import importlib

    cls = getattr(importlib.import_module(module), name)
    config = cls()
    back = cls.from_dict(json.loads(json.dumps(dataclasses.asdict(config))))
    assert back == config
    with pytest.raises(ValueError, match="没有的字段"):
        cls.from_dict(dict(dataclasses.asdict(config), colour="red"))
    first_int = next(f.name for f in dataclasses.fields(cls) if f.type in (int, "int"))
    with pytest.raises((ValueError, TypeError), match=first_int):
        cls(**{first_int: 0 if first_int != "mem_len" else -1})


def test_seq2seq_configs_round_trip():
    import dataclasses

    from lmcourse.models.seq2seq import Seq2SeqConfig
    from lmcourse.models.transformer import Seq2SeqTransformerConfig

    for config in (Seq2SeqConfig(10, 12, attention="luong"), Seq2SeqTransformerConfig(10, 12)):
        assert type(config).from_dict(json.loads(json.dumps(dataclasses.asdict(config)))) == config


def test_cutoffs_are_checked():
    from lmcourse.models.rnn import RNNLMConfig

    with pytest.raises(ValueError, match="cutoffs"):
        RNNLMConfig(vocab_size=100, cutoffs=(50, 40))
    with pytest.raises(ValueError, match="cutoffs"):
        RNNLMConfig(vocab_size=100, cutoffs=(50, 100))
    assert RNNLMConfig.from_dict({"vocab_size": 100, "cutoffs": [20, 60]}).cutoffs == (20, 60)


# 包内的层次：每个模块只导入同层或下层的模块（__main__ 里的命令行除外），所以没有导入环。
# 最上面一层是仓库里的配方 recipes/：它不在 lmcourse/ 里、不随包安装，包里的模块一处也不导入它。
LAYERS = [("lmcourse", "lmcourse._check", "lmcourse.timing", "lmcourse.text", "lmcourse.metrics", "lmcourse.viz"),
          ("lmcourse.data", "lmcourse.data.synthetic", "lmcourse.ckpt", "lmcourse.masking"),
          ("lmcourse.models",),
          ("lmcourse.objectives", "lmcourse.train"),
          ("lmcourse.finetune", "lmcourse.pretrain"),
          ("lmcourse.widgets",),
          ("recipes",)]


def _layer(module):
    for i, layer in reversed(list(enumerate(LAYERS))):
        if any(module == m or (m not in ("lmcourse",) and module.startswith(m + ".")) for m in layer):
            return i
    raise AssertionError(f"{module} 不在任何一层里")


def _imports():
    """(模块, 它导入的 lmcourse 或 recipes 模块) 的全部边（lmcourse/ 与 recipes/ 里的每个文件），
    含函数里的导入，不含 if __name__ == "__main__" 里的。"""
    import ast

    edges = set()
    for path in [*(ROOT / "lmcourse").rglob("*.py"), *(ROOT / "recipes").rglob("*.py")]:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        main_blocks = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
        skip = {id(x) for b in main_blocks for x in ast.walk(b)}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if node.module == "lmcourse" else node.module for a in node.names]
            else:
                continue
            for t in targets:
                if t.split(".")[0] in ("lmcourse", "recipes"):
                    if t.count(".") == 1 and t.split(".")[1] in ("set_seed", "num_threads", "get_device", "device_of", "to_device"):
                        t = "lmcourse"
                    edges.add((module, t))
    return edges


def test_imports_only_run_down_the_layers():
    edges = _imports()
    assert len(edges) > 50 and ("recipes.bert", "lmcourse.pretrain") in edges      # 两个目录都扫到了
    into_recipes = sorted((a, b) for a, b in edges if b.split(".")[0] == "recipes" and a.split(".")[0] == "lmcourse")
    assert into_recipes == [], f"包里导入了仓库的配方：{into_recipes}"
    up = sorted((a, b) for a, b in edges if _layer(b) > _layer(a))
    assert up == [], f"往上层导入：{up}"
    graph = {}
    for a, b in edges:
        if a != b:
            graph.setdefault(a, set()).add(b)
    state = {}

    def visit(m, path):
        if state.get(m) == 1:
            raise AssertionError("导入环：" + " → ".join(path + [m]))
        if state.get(m) == 2:
            return
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if not (m.startswith(n + ".") or n == "lmcourse"):     # 子模块导入自己的包不算环
                visit(n, path + [m])
        state[m] = 2

    for m in sorted(graph):
        visit(m, [])


def test_recipes_live_outside_the_installed_package():
    """配方、实验格子和缓存在仓库的 recipes/ 里：不在 lmcourse/ 下，pyproject 的 packages.find 也不收它。"""
    import fnmatch
    import tomllib

    assert (ROOT / "recipes" / "__init__.py").is_file() and not (ROOT / "lmcourse" / "recipes").exists()
    find = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]["find"]
    assert any(fnmatch.fnmatch("lmcourse.models", p) for p in find["include"])
    assert not any(fnmatch.fnmatch(m, p) for m in ("recipes", "recipes.bert") for p in find["include"])


def test_forward_paths_create_no_stray_cpu_tensors():
    """模型和输入都放在 meta 设备上：前向里凡是没跟着输入设备新建的 CPU 张量，一和 meta 张量相遇就报错。"""
    import torch

    from lmcourse.models import bert, elmo, gpt

    with torch.device("meta"):
        cfg = bert.BertConfig.small(50)
        clf = bert.BertForSequenceClassification(cfg, pooling="mean")            # 前归一化 + ALiBi、平均池化
        bilm = elmo.BiLM(elmo.ELMoConfig(vocab_size=50, dim=16, num_layers=2, cutoffs=(20, 30)))
        lm = gpt.GPT(gpt.GPTConfig(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2))
        ids = torch.zeros(2, 8, dtype=torch.long)
    assert clf(ids).device.type == "meta" and clf(ids, attention_mask=torch.ones_like(ids)).shape == (2, 2)
    assert bilm.layers(ids, torch.full((2,), 8, device="meta")).device.type == "meta"
    cache = []
    lm(ids, cache=cache)
    assert lm(ids[:, -1:], cache=cache).device.type == "meta"
