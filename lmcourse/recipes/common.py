"""配方共用的一步：用 pretrain 命令训练，读回权重和记录。"""
import json
import os
import shlex
from pathlib import Path

# 训练目录（中途被打断时，再运行同一配方会 --resume 接着训练）：固定在仓库的 _build/ 下，与从哪个目录运行无关；
# 环境变量 LMCOURSE_RUNS 可以改到别处。
RUNS = Path(os.environ.get("LMCOURSE_RUNS") or Path(__file__).resolve().parents[2] / "_build" / "checkpoint_runs")


def pretrain(name, argv):
    """运行 python -m lmcourse.pretrain ARGV --out RUNS/NAME，返回 (state_dict, config, metrics, 命令)。"""
    import torch

    from lmcourse import pretrain as engine

    out = RUNS / name
    command = "python -m lmcourse.pretrain " + " ".join(map(shlex.quote, argv))
    args = list(argv) + ["--out", str(out)]
    if (out / "model.pt").exists():
        pass                                          # 已经训练完：直接读结果
    else:
        if (out / "state.pt").exists():
            args.append("--resume")
        engine.run(args)
    state = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return state, config, metrics, command


def history(metrics, keys, digits=2):
    """引擎的记录里挑出若干列（四舍五入），写进检查点的说明。"""
    return [{"step": r["step"], "seconds": round(r["seconds"], 1), **{k: round(r[k], digits) for k in keys if k in r}}
            for r in metrics["history"]]
