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

from lmcourse._check import check_choice

DIR = Path(__file__).parent / "checkpoints"
NAMES = ("nnlm", "lstm_lm", "elmo", "bert_news", "bert_sentiment", "gpt_news", "gpt_sentiment",
         "xlnet_news", "xlnet_sentiment", "ernie_news", "ernie_tasks", "frozen_sentiment")   # 配方见 lmcourse/recipes/


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


def build(name):
    check_choice("name", name, NAMES)
    from lmcourse.recipes import RECIPES

    model, meta = RECIPES[name]()
    meta = save(name, model, meta)
    print(json.dumps({k: meta[k] for k in ("name", "train_seconds", "metrics")}, ensure_ascii=False))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    names = list(NAMES) if argv == ["all"] else argv
    if not names:
        print(f"用法：python -m lmcourse.ckpt NAME|all，NAME 为 {'、'.join(NAMES)}")
        return 2
    for name in names:
        build(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
