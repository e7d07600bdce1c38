"""重建检查点：python -m lmcourse.ckpt NAME|all，或在仓库的根目录 python -m recipes NAME|all。"""
import json
import sys

from lmcourse import ckpt
from lmcourse._check import check_choice
from recipes import RECIPES


def build(name):
    """按配方训练检查点 name，存进 lmcourse/checkpoints/，打印训练时间和指标。"""
    check_choice("name", name, ckpt.NAMES)
    model, meta = RECIPES[name]()
    meta = ckpt.save(name, model, meta)
    print(json.dumps({k: meta[k] for k in ("name", "train_seconds", "metrics")}, ensure_ascii=False))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    names = list(ckpt.NAMES) if argv == ["all"] else argv
    if not names:
        print(f"用法：python -m lmcourse.ckpt NAME|all，NAME 为 {'、'.join(ckpt.NAMES)}")
        return 2
    for name in names:
        build(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
