"""预训练引擎：目标、流式数据、命令行，以及 1 个进程与 2 个进程的结果相同（训练循环本身见 test_train.py）。"""
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lmcourse import ckpt, data, objectives, pretrain

TINY = ["--preset", "tiny", "--batch-size", "8", "--seq-len", "32", "--quiet", "--eval-every", "3"]


def _params(path):
    return torch.load(path, weights_only=True)


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


# ---------- 目标与数据 ----------
def test_pack_fills_blocks_without_padding(tmp_path):
    tok = data.lm_tokenizer()
    blocks = list(pretrain.pack(["人民日报", "社论", "新年好"], tok, 4, False))
    assert all(len(b) == 4 for b in blocks) and tok.pad_id not in sum(blocks, [])
    assert tok.decode(sum(blocks, [])) == "人民日报[SEP]社论[SEP]新年好[SEP]" and len(blocks) == 3
    path = tmp_path / "mine.txt"
    path.write_text("第一行文本\n\n第二行文本\n", encoding="utf-8")
    assert list(pretrain.corpus_lines(str(path))) == ["第一行文本", "第二行文本"]


def test_batches_do_not_depend_on_process_count():
    tok = data.bert_tokenizer()
    obj = objectives.get("mlm_nsp", tokenizer=tok, p=0.3)
    one = pretrain.Batches(obj, "news", tok, normalize=True, batch_size=8, seq_len=32, seed=3)
    two = [pretrain.Batches(obj, "news", tok, normalize=True, batch_size=8, seq_len=32, seed=3, rank=r, world=2) for r in range(2)]
    for i in (1, 2, 5):
        whole = one(i)
        parts = [b(i) for b in two]
        for key in whole:
            assert torch.equal(whole[key], torch.cat([p[key] for p in parts])), key
    again = pretrain.Batches(obj, "news", tok, normalize=True, batch_size=8, seq_len=32, seed=3)(5)   # 直接跳到第 5 批（续训时）也一样
    assert all(torch.equal(again[k], whole[k]) for k in whole)


def test_mlm_objective_masks_and_counts():
    tok = data.bert_tokenizer()
    obj = objectives.get("mlm", tokenizer=tok, p=0.15)
    b = pretrain.Batches(obj, "news", tok, normalize=True, batch_size=64, seq_len=128, seed=0)(1)
    assert (b["input_ids"][:, 0] == tok.cls_id).all() and b["input_ids"].shape == (64, 128)
    picked = b["mlm_labels"] != -100
    assert 0.12 < picked.float().mean() < 0.18
    assert not picked[:, 0].any()
    nsp = objectives.get("mlm_nsp", tokenizer=tok)
    b = pretrain.Batches(nsp, "news", tok, normalize=True, batch_size=256, seq_len=64, seed=0)(3)
    assert 0.4 < b["nsp_labels"].float().mean() < 0.6
    assert ((b["token_type_ids"] == 1).sum(1) > 0).all()
    with pytest.raises(ValueError, match="name"):
        objectives.get("ernie_no_such_objective")


def test_permutation_lm_objective_predicts_a_fraction_without_leaks():
    """plm：输入不做替换；预测比例 p 的普通字；一个预测对象的打分与它自己和顺序里排在它后面的字都无关。"""
    from lmcourse.models.xlnet import XLNetConfig, XLNetLMHeadModel

    tok = data.bert_tokenizer()
    obj = objectives.get("plm", tokenizer=tok, p=0.4)
    chunk = obj.chunk_len(64)
    b = pretrain.Batches(obj, "news", tok, normalize=True, batch_size=16, seq_len=64, seed=0)(1)
    again = pretrain.Batches(obj, "news", tok, normalize=True, batch_size=16, seq_len=64, seed=0)(1)
    assert all(torch.equal(b[k], again[k]) for k in b)                     # 只由 (种子, 样本编号) 决定
    assert b["input_ids"].shape == (16, chunk + 1) and (b["input_ids"][:, 0] == tok.cls_id).all()
    assert not (b["input_ids"] == tok.mask_id).any()                       # 没有 [MASK]
    y, tm = b["plm_labels"], b["target_mapping"]
    real = y != -100
    assert 0.37 < real.sum() / (16 * chunk) < 0.41
    pos = tm.argmax(-1)                                                    # (B, P) 每个预测对象的位置
    assert torch.equal(b["input_ids"].gather(1, pos)[real], y[real])
    specials = torch.tensor([tok.cls_id, tok.sep_id])
    assert not torch.isin(y[real], specials).any()
    torch.manual_seed(0)
    model = XLNetLMHeadModel(XLNetConfig(vocab_size=len(tok), d_model=16, n_layer=1, n_head=2, d_head=8,
                                         d_inner=32, dropout=0.0)).double().eval()
    row = {k: v[:1] for k, v in b.items()}
    pm, tmap = row["perm_mask"].double(), row["target_mapping"].double()
    base = model(row["input_ids"], perm_mask=pm, target_mapping=tmap)[0][0]
    for k in (0, 5, int(real[0].sum()) - 1):                               # 换掉第 k 个预测对象的字
        ids = row["input_ids"].clone()
        ids[0, pos[0, k]] = tok.mask_id
        d = (model(ids, perm_mask=pm, target_mapping=tmap)[0][0] - base).abs().amax(-1)
        assert (d[:k + 1] < 1e-12).all() and (d[k + 1:int(real[0].sum())] > 1e-12).all()
    loss, n = obj(model.float(), b)
    assert n == int(real.sum()) and loss.item() / n == pytest.approx(math.log(len(tok)), rel=0.1)


def test_objective_metrics_match_a_direct_computation():
    # metrics 只是把 __call__ 的损失和统计逐批加起来：与直接用模型算出的结果相同
    import math

    import torch.nn.functional as F

    from lmcourse.models.bert import BertConfig, BertForPreTraining
    from lmcourse.models.elmo import BiLM, ELMoConfig

    torch.manual_seed(0)
    tok = data.bert_tokenizer()
    bert = BertForPreTraining(BertConfig.small(len(tok), num_hidden_layers=1)).eval()
    for name in ("mlm", "mlm_nsp"):
        obj = objectives.get(name, tokenizer=tok, p=0.3)
        batches = [pretrain.Batches(obj, "news", tok, normalize=True, batch_size=4, seq_len=32, seed=0)(i) for i in (1, 2)]
        nll = n = correct = 0
        with torch.no_grad():
            for b in batches:
                picked = b["mlm_labels"] != -100
                logits, _ = bert(b["input_ids"], b["token_type_ids"], None, picked)
                nll += F.cross_entropy(logits, b["mlm_labels"][picked], reduction="sum").item()
                correct += int((logits.argmax(-1) == b["mlm_labels"][picked]).sum())
                n += int(picked.sum())
        m = obj.metrics(bert, batches)
        assert m["valid_ppl"] == pytest.approx(math.exp(nll / n)) and m["valid_acc"] == pytest.approx(correct / n)
        assert ("valid_nsp_acc" in m) == (name == "mlm_nsp")
    lm_tok = data.lm_tokenizer()
    bilm = BiLM(ELMoConfig(vocab_size=len(lm_tok), dim=16, cutoffs=(100, 1000))).eval()
    obj = objectives.get("bilm")
    batches = [pretrain.Batches(obj, "news", lm_tok, normalize=True, batch_size=4, seq_len=16, seed=0)(i) for i in (1, 2)]
    with torch.no_grad():
        f = sum(bilm.nll(b["ids"])[0].item() for b in batches) / 2           # 两批一样大：逐批平均再平均
        b_ = sum(bilm.nll(b["ids"])[1].item() for b in batches) / 2
    m = obj.metrics(bilm, batches)
    assert m["valid_ppl_forward"] == pytest.approx(math.exp(f)) and m["valid_ppl_backward"] == pytest.approx(math.exp(b_))


# ---------- 命令行 ----------
def test_resume_equals_uninterrupted_run(tmp_path):
    args = ["bert", *TINY, "--schedule", "constant", "--warmup", "2"]
    assert pretrain.main(args + ["--steps", "9", "--out", str(tmp_path / "a")]) == 0
    assert pretrain.main(args + ["--steps", "6", "--out", str(tmp_path / "b")]) == 0
    assert pretrain.main(args + ["--steps", "9", "--out", str(tmp_path / "b"), "--resume"]) == 0
    assert _max_diff(_params(tmp_path / "a" / "model.pt"), _params(tmp_path / "b" / "model.pt")) == 0.0
    ma = json.loads((tmp_path / "a" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert [r["valid_loss"] for r in ma["history"]] == [r["valid_loss"] for r in mb["history"]]


def test_init_continues_from_given_weights_and_rejects_a_mismatch(tmp_path, capsys):
    """--init：从已有权重出发（如在评论上继续预训练）；0 步学习率时权重原样保留；尺寸对不上时报错。"""
    assert pretrain.main(["bert", *TINY, "--steps", "2", "--out", str(tmp_path / "a")]) == 0
    assert pretrain.main(["bert", *TINY, "--steps", "1", "--lr", "1e-12", "--init", str(tmp_path / "a"),
                          "--corpus", "reviews", "--out", str(tmp_path / "b")]) == 0
    assert _max_diff(_params(tmp_path / "a" / "model.pt"), _params(tmp_path / "b" / "model.pt")) < 1e-6
    assert pretrain.main(["bert", "--preset", "small", "--steps", "1", "--init", str(tmp_path / "a"),
                          "--out", str(tmp_path / "c")]) == 2
    assert "init" in capsys.readouterr().err
    assert pretrain.main(["bert", *TINY, "--init", str(tmp_path / "nothing"), "--out", str(tmp_path / "d")]) == 2


@pytest.mark.parametrize("model", ["nnlm", "lstm", "elmo", "bert", "gpt", "xlnet", "ernie"])
def test_every_model_trains_through_the_command(tmp_path, model):
    assert pretrain.main([model, *TINY, "--steps", "3", "--out", str(tmp_path / model)]) == 0
    state = _params(tmp_path / model / "model.pt")
    config = json.loads((tmp_path / model / "config.json").read_text())
    assert state and config["args"]["model"] == model
    assert json.loads((tmp_path / model / "metrics.json").read_text())["history"][-1]["step"] == 3


def test_bad_input_gives_clear_error_and_overwrites_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert pretrain.main(["bert", *TINY, "--steps", "3", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    cases = [
        (["t5", "--out", str(tmp_path / "x")], "model"),
        (["bert", "--preset", "huge", "--out", str(tmp_path / "x")], "preset"),
        (["bert", "--corpus", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x")], "不存在"),
        (["bert", "--corpus", str(empty), "--out", str(tmp_path / "x")], "空的"),
        (["bert", *TINY, "--steps", "3", "--out", str(out)], "不会覆盖"),
        (["elmo", *TINY, "--steps", "3", "--out", str(out), "--resume"], "model='bert'"),
        (["bert", "--resume", "--out", str(tmp_path / "nothing")], "resume"),
        (["bert", *TINY, "--steps", "2", "--eval-every", "-1", "--out", str(out), "--resume"], "eval_every"),
        (["bert", *TINY, "--steps", "3", "--lr", "3e-3", "--out", str(out), "--resume"], "lr=0.001"),
        (["bert", *TINY, "--steps", "3", "--mask-prob", "0.4", "--out", str(out), "--resume"], "mask_prob=0.15"),
        (["bert", *TINY, "--steps", "3", "--dropout", "0", "--out", str(out), "--resume"], "dropout=0.1"),
        (["bert", "--eval-every", "0", "--out", str(tmp_path / "x")], "eval_every"),
        (["bert", "--mask-prob", "1.5", "--out", str(tmp_path / "x")], "mask_prob"),
        (["bert", "--threads", "0", "--out", str(tmp_path / "x")], "threads"),
        (["bert", "--steps", "abc", "--out", str(tmp_path / "x")], "--steps"),
    ]
    for argv, message in cases:
        assert pretrain.main(argv) == 2
        assert message in capsys.readouterr().err
    os.environ["WORLD_SIZE"] = "2"
    try:
        assert pretrain.main(["bert", "--batch-size", "5", "--out", str(tmp_path / "x")]) == 2
        assert "整除" in capsys.readouterr().err
    finally:
        del os.environ["WORLD_SIZE"]
    assert not (tmp_path / "x").exists() and not (tmp_path / "nothing").exists()   # 没有建出新目录
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before               # 已有目录逐字节不变


@pytest.mark.parametrize("model, extra", [("bert", ["--objective", "mlm_nsp", "--accum", "2"]), ("lstm", [])])
def test_two_processes_end_with_the_same_parameters(tmp_path, model, extra):
    """torchrun 的 2 个进程（gloo）与 1 个进程：同样的种子、全局批大小、dropout 0，参数在浮点误差内相同。
    bert 还累积 2 个小批（前一个不同步梯度）；lstm 的目标调用 model.nll 而不是 forward，检查它在 DDP 下也同步梯度。"""
    args = ["-m", "lmcourse.pretrain", model, *TINY, "--steps", "6", "--dropout", "0", *extra]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], check=True, env=env)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", *args,
                    "--out", str(tmp_path / "two")], check=True, env=env, capture_output=True)
    one, two = _params(tmp_path / "one" / "model.pt"), _params(tmp_path / "two" / "model.pt")
    assert _max_diff(one, two) < 1e-5
    start = pretrain.MODELS[model].build("tiny", len(pretrain.tokenizer_for(model)[0]), 32, 0.0)[0].state_dict()
    assert _max_diff(one, start) > 1e-3                              # 确实训练过
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2


def test_batches_check_their_arguments():
    tok = data.bert_tokenizer()
    obj = objectives.get("mlm", tokenizer=tok)
    with pytest.raises(ValueError, match="batch_size"):
        pretrain.Batches(obj, "news", tok, normalize=True, batch_size=6, seq_len=32, seed=0, world=4)
    with pytest.raises(TypeError, match="seq_len"):
        pretrain.Batches(obj, "news", tok, normalize=True, batch_size=8, seq_len="32", seed=0)
    with pytest.raises(ValueError, match="corpus"):
        pretrain.Batches(obj, "wiki", tok, normalize=True, batch_size=8, seq_len=32, seed=0)


# ---------- Command：配方把命令写成数据 ----------
def test_command_fields_and_defaults_are_the_parser_options():
    """Command 的字段与 parser() 的参数同名、同序、同默认值（--out、--resume、--quiet 除外），两者分不开。"""
    import dataclasses

    parsed = vars(pretrain.parser().parse_args(["bert", "--out", "x"]))
    options = {k: v for k, v in parsed.items() if k not in ("out", "resume", "quiet")}
    assert [f.name for f in dataclasses.fields(pretrain.Command)] == list(options)
    assert dataclasses.fields(pretrain.Command)[0].default is dataclasses.MISSING     # model 必须给出
    assert dataclasses.asdict(pretrain.Command("bert")) == options
    with pytest.raises(TypeError):
        pretrain.Command()


def test_command_argv_round_trips_through_the_parser():
    import dataclasses

    c = pretrain.Command("ernie", preset="tiny", objective="mlm", corpus="reviews", steps=7, batch_size=4, accum=2,
                         seq_len=32, lr=3e-4, warmup=0.25, schedule="cosine", weight_decay=0.0, dropout=0.0,
                         mask_prob=0.3, post_ln=True, seed=5, eval_every=3, threads=2, workers=2, precision="bf16", init="bert_news")
    default = pretrain.Command("bert")
    assert all(getattr(c, f.name) != getattr(default, f.name) for f in dataclasses.fields(c))   # 每一项都不是默认值
    parsed = vars(pretrain.parser().parse_args(c.argv() + ["--out", "x"]))
    assert {k: parsed[k] for k in dataclasses.asdict(c)} == dataclasses.asdict(c)
    assert c.argv()[:3] == ["ernie", "--preset", "tiny"] and "--post-ln" in c.argv() and "True" not in c.argv()
    plain = default.argv()                                           # None 与 False 的项不写
    assert plain[0] == "bert" and not {"--objective", "--post-ln", "--eval-every", "--threads", "--precision", "--init"} & set(plain)
    assert dataclasses.replace(default, steps=9).argv()[plain.index("--steps") + 1] == "9"


def test_command_checks_its_settings():
    import dataclasses

    with pytest.raises(ValueError, match="model"):
        pretrain.Command("t5")
    with pytest.raises(TypeError, match="steps"):
        pretrain.Command("bert", steps="10")
    with pytest.raises(ValueError, match="dropout"):
        pretrain.Command("bert", dropout=1.0)
    with pytest.raises(ValueError, match="schedule"):
        dataclasses.replace(pretrain.Command("bert"), schedule="step")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pretrain.Command("bert").steps = 3


RESUME_CHANGES = {"model": ["elmo"], "preset": ["--preset", "small"], "objective": ["--objective", "mlm_nsp"],
                  "corpus": ["--corpus", "reviews"], "batch_size": ["--batch-size", "4"], "accum": ["--accum", "2"],
                  "seq_len": ["--seq-len", "64"], "lr": ["--lr", "3e-3"], "warmup": ["--warmup", "1"],
                  "schedule": ["--schedule", "cosine"], "weight_decay": ["--weight-decay", "0.1"],
                  "dropout": ["--dropout", "0"], "mask_prob": ["--mask-prob", "0.4"], "post_ln": ["--post-ln"],
                  "seed": ["--seed", "1"], "init": ["--init", "bert_news"], "precision": ["--precision", "bf16"]}


def test_resume_refuses_every_changed_setting_and_touches_nothing(tmp_path, capsys):
    """续训的表：FIXED_ON_RESUME 里的每一项改了都被拒绝，报错点名这一项，目录里的文件逐字节不变；
    只改 --steps（接着多训几步）是允许的。"""
    assert set(RESUME_CHANGES) == set(pretrain.FIXED_ON_RESUME)
    out = tmp_path / "run"
    assert pretrain.main(["bert", *TINY, "--steps", "2", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert json.loads((out / "config.json").read_text())["args"]["precision"] == "fp32"   # 记下真正用的精度，不是 None
    for key, change in RESUME_CHANGES.items():
        model, flags = (change[0], []) if key == "model" else ("bert", change)
        argv = [model, *TINY, "--steps", "3", *flags, "--out", str(out), "--resume"]
        assert pretrain.main(argv) == 2, key
        assert f"{key}=" in capsys.readouterr().err, key
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before, key
    assert pretrain.main(["bert", *TINY, "--steps", "3", "--out", str(out), "--resume"]) == 0


def test_worker_count_does_not_change_the_batches():
    """Prefetch：0 个和 2 个子进程做出的批次逐元素相同（ERNIE 的知识掩码，jieba 在子进程里切词）；从中间跳回也一样。"""
    tok = data.bert_tokenizer()
    obj = objectives.get("ernie", tokenizer=tok, total_examples=48)           # 前三分之一逐字、中间整词、最后实体
    make = lambda: pretrain.Batches(obj, "news", tok, normalize=True, batch_size=4, seq_len=32, seed=0)  # noqa: E731
    inline, workers = pretrain.Prefetch(make()), pretrain.Prefetch(make(), workers=2)
    for i in (1, 2, 3, 4, 5, 6, 11, 12, 3, 4):                                  # 11：跳到后面（续训）；3：再跳回来
        a, b = inline(i), workers(i)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), i
    with pytest.raises(ValueError, match="workers"):
        pretrain.Prefetch(make(), workers=-1)


def test_training_with_data_workers_equals_training_without(tmp_path):
    args = ["ernie", *TINY, "--steps", "4", "--dropout", "0"]
    assert pretrain.main(args + ["--out", str(tmp_path / "a")]) == 0
    assert pretrain.main(args + ["--workers", "2", "--out", str(tmp_path / "b")]) == 0
    assert _max_diff(_params(tmp_path / "a" / "model.pt"), _params(tmp_path / "b" / "model.pt")) == 0
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["layout"]["data_workers"] == 2


def _book_commands(page):
    """附录代码块里的每条 pretrain 命令（续行拼好），只留 lmcourse.pretrain 之后的参数。"""
    text = (Path(__file__).resolve().parents[1] / "book" / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    commands = [" ".join(b.replace("\\\n", " ").split()) for b in blocks]
    return [shlex.split(c.split("lmcourse.pretrain", 1)[1]) for c in commands if "lmcourse.pretrain" in c]


def test_every_command_in_the_appendix_runs(tmp_path):
    """附录里的每条命令都在 CPU 上真跑一遍：尺寸、步数、批大小、块长换成最小的，自己的语料换成一个小文件；
    续训那条先不带 --resume 跑，再带着跑。续训命令与 bert_news 检查点记下的命令设置完全相同。"""
    corpus = tmp_path / "mine.txt"
    corpus.write_text("\n".join(data.peoples_daily_texts("train")[:200]) + "\n", encoding="utf-8")
    small = {"--preset": "tiny", "--steps": "2", "--batch-size": "4", "--seq-len": "32"}
    commands = _book_commands("appendix_cluster.md")
    assert len(commands) == 6
    for k, argv in enumerate(commands):
        args = [a for a in argv if a != "--resume"]
        for i, a in enumerate(args[:-1]):
            if a in small:
                args[i + 1] = small[a]
            elif a == "--corpus" and args[i + 1].endswith(".txt"):
                args[i + 1] = str(corpus)
            elif a == "--out":
                args[i + 1] = str(tmp_path / f"run{k}")
        assert pretrain.main(args + ["--quiet", "--eval-every", "1"]) == 0, argv
        if "--resume" in argv:
            assert pretrain.main(args + ["--quiet", "--eval-every", "1", "--steps", "3", "--resume"]) == 0
            stored = shlex.split(ckpt.info("bert_news")["pretrain_command"].split("lmcourse.pretrain", 1)[1])
            mine = argv[:argv.index("--out")] + argv[argv.index("--out") + 2:]
            settings = [vars(pretrain.parser().parse_args([a for a in c if a != "--resume"] + ["--out", "x"]))
                        for c in (mine, stored)]
            assert settings[0] == settings[1]


def test_error_table_in_the_appendix_quotes_the_real_messages(tmp_path, capsys):
    """附录“报错”表的每一行：按那一行的情形运行命令，退出码 2，报错里逐段出现表里的原话（… 处是路径等可变部分）。"""
    page = (Path(__file__).resolve().parents[1] / "book" / "appendix_cluster.md").read_text(encoding="utf-8")
    table = page.split("| 情形 | 报错（节选） |", 1)[1].split("\n\n", 1)[0]
    messages = [row.split(" | ")[1].rstrip(" |") for row in table.strip().splitlines()[1:]]
    out, empty = tmp_path / "run", tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    assert pretrain.main(["bert", *TINY, "--steps", "2", "--out", str(out)]) == 0
    cases = [["roberta", "--out", str(tmp_path / "x")], ["bert", "--preset", "huge", "--out", str(tmp_path / "x")],
             ["bert", "--corpus", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x")],
             ["bert", "--corpus", str(empty), "--out", str(tmp_path / "x")],
             ["elmo", *TINY, "--out", str(out), "--resume"],
             ["bert", *TINY, "--mask-prob", "0.4", "--out", str(out), "--resume"],
             ["bert", "--out", str(tmp_path / "nothing"), "--resume"], ["bert", *TINY, "--out", str(out)]]
    assert len(messages) == len(cases) + 1
    capsys.readouterr()
    for argv, message in zip(cases, messages):
        assert pretrain.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert all(part.strip() in err for part in message.split("…")), (message, err)
    os.environ["WORLD_SIZE"] = "8"
    try:
        assert pretrain.main(["bert", "--batch-size", "100", "--out", str(tmp_path / "x")]) == 2
        assert messages[-1] in capsys.readouterr().err
    finally:
        del os.environ["WORLD_SIZE"]
