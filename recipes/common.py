"""配方共用的部分：用 pretrain 命令训练、读回权重和记录；微调实验格子的种子与轮数。"""
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import torch

from lmcourse import pretrain as engine
from lmcourse._check import Config, check_int, check_number, check_type

# 训练目录（中途被打断时，再运行同一配方会 --resume 接着训练）：固定在仓库的 _build/ 下，与从哪个目录运行无关；
# 环境变量 LMCOURSE_RUNS 可以改到别处。
RUNS = Path(os.environ.get("LMCOURSE_RUNS") or Path(__file__).resolve().parents[1] / "_build" / "checkpoint_runs")


def pretrain(name, command):
    """运行 python -m lmcourse.pretrain COMMAND --out RUNS/NAME（command 是 pretrain.Command），
    返回 (state_dict, config, metrics, 命令的文字)。"""
    check_type("command", command, engine.Command, "lmcourse.pretrain.Command")
    out = RUNS / name
    text = "python -m lmcourse.pretrain " + shlex.join(command.argv())
    if not (out / "model.pt").exists():                   # 已经训练完时直接读结果
        args = command.argv() + ["--out", str(out)]
        if (out / "state.pt").exists():
            args.append("--resume")
        engine.run(args)
    state = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return state, config, metrics, text


def history(metrics, keys, digits=2):
    """引擎的记录里挑出若干列（四舍五入），写进检查点的说明。"""
    return [{"step": r["step"], "seconds": round(r["seconds"], 1), **{k: round(r[k], digits) for k in keys if k in r}}
            for r in metrics["history"]]


def check_seeds(seeds):
    """实验格子的种子：至少 2 个不小于 0 的整数（要算标准差）。"""
    check_type("seeds", seeds, tuple, "整数元组")
    if len(seeds) < 2:
        raise ValueError(f"参数 seeds 至少要有 2 个种子（要算标准差），收到 {seeds}")
    for seed in seeds:
        check_int("seeds 的元素", seed, minimum=0)
    return seeds


@dataclass(frozen=True)
class FineTuneGrid(Config):
    """一组微调对比的格子：每个设置用这几个种子各微调 epochs 轮。变体用 dataclasses.replace。"""

    seeds: tuple = (0, 1, 2)
    epochs: float = 1.0

    def __post_init__(self):
        check_seeds(self.seeds)
        check_number("epochs", self.epochs, minimum=0, strict=True)
