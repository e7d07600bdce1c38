"""检查点：由本包自己训练、自己产出、随包分发的小模型。

每个检查点 NAME 由 lmcourse/checkpoints/ 下的两个文件组成：
NAME.pt（fp16 权重）和 NAME.json（配置、数据划分、训练时间、最终指标、重建命令）。
重建一个：python -m lmcourse.ckpt NAME；全部重建：make checkpoints。
"""
import hashlib
import json
import platform
import sys
from pathlib import Path
from types import MappingProxyType

from lmcourse._check import check_choice

DIR = Path(__file__).parent / "checkpoints"
# 检查点名 -> 它的字表："lm" 是人民日报的字表（data.lm_tokenizer），"bert" 是含评论的字表（data.bert_tokenizer）。
# 每个名字在仓库的 recipes/ 里有一个配方（recipes.RECIPES，键与这里一致；配方不随包安装）。
CHECKPOINTS = MappingProxyType({"nnlm": "lm", "lstm_lm": "lm", "elmo": "lm", "bert_news": "bert", "bert_sentiment": "bert",
               "gpt_news": "lm", "gpt_sentiment": "lm", "xlnet_news": "bert", "xlnet_sentiment": "bert",
               "ernie_news": "bert", "ernie_tasks": "bert", "frozen_sentiment": "lm"})
NAMES = tuple(CHECKPOINTS)


def vocab_hash(tokenizer):
    """字表的指纹：检查点加载时核对，防止字表变了而权重没变。"""
    return hashlib.sha1("\n".join(tokenizer.itos).encode("utf-8")).hexdigest()[:12]


def save(name, model, meta):
    import torch

    DIR.mkdir(exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(state, DIR / f"{name}.pt")
    meta = dict(meta, name=name, command=f"python -m lmcourse.ckpt {name}",
                torch=torch.__version__, python=platform.python_version())
    (DIR / f"{name}.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return meta


def info(name):
    """读检查点的说明（配置、训练时间、指标……）。"""
    check_choice("name", name, NAMES)
    path = DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"检查点 {name} 不存在，请先运行：python -m lmcourse.ckpt {name}")
    return json.loads(path.read_text(encoding="utf-8"))


def load_state(name, tokenizer=None):
    """读检查点的权重（weights_only=True），转回 float32。

    给了 tokenizer 时核对字表指纹：字表变了而权重没变，就报错并给出重建命令。
    """
    import torch

    meta = info(name)
    if tokenizer is not None and meta["vocab_hash"] != vocab_hash(tokenizer):
        raise ValueError(f"检查点 {name} 的字表与当前数据建出的字表不一致，请重建：python -m lmcourse.ckpt {name}")
    state = torch.load(DIR / f"{name}.pt", map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, meta


def tokenizer(name):
    """检查点 name 用的字表。"""
    from lmcourse import data

    return data.tokenizer(CHECKPOINTS[check_choice("name", name, NAMES)])


def load(name, build):
    """载入检查点 name（核对字表）：build(meta) 由说明里的配置建出模型，装上权重，返回 (eval 模式的模型, meta)。"""
    state, meta = load_state(name, tokenizer(name))
    model = build(meta)
    model.load_state_dict(state)
    return model.eval(), meta


if __name__ == "__main__":    # python -m lmcourse.ckpt NAME|all：配方在仓库的 recipes/ 里（不随包安装），命令行也在那里
    ROOT = Path(__file__).resolve().parents[1]
    if (ROOT / "recipes" / "__init__.py").is_file() and str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))           # 从仓库的任何目录运行都找得到 recipes
    try:
        from recipes.__main__ import main
    except ModuleNotFoundError as e:
        if e.name not in ("recipes", "recipes.__main__"):
            raise
        print("重建检查点要用配方，配方在本书仓库的 recipes/ 目录里，不随 lmcourse 安装：请在仓库里运行这条命令", file=sys.stderr)
        sys.exit(2)
    sys.exit(main())
