"""全书唯一的训练循环：梯度累积、梯度裁剪、升温 + 衰减的学习率、定期评估、进度条、可画图的记录、断点续训。

各章的短训练、检查点的配方、微调和 `python -m lmcourse.pretrain` 都用这里的 fit。
在 torchrun 启动的多进程里（DistributedDataParallel），fit 只让 0 号进程显示进度、评估和写文件。
"""
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from lmcourse import device_of
from lmcourse._check import check_choice, check_int, check_number

SCHEDULES = ("constant", "linear", "cosine")


@dataclass
class History:
    """训练记录：每次评估一行，含步数、已用的训练秒数（不含评估）、这段时间的平均训练损失和评估指标。"""

    records: list = field(default_factory=list)

    def __len__(self):
        return len(self.records)

    def column(self, key):
        return [r[key] for r in self.records if key in r]

    @property
    def last(self):
        return self.records[-1] if self.records else {}

    def plot(self, keys=("train_loss", "valid_loss"), x="step", ax=None, **kwargs):
        """把若干列画成曲线，横轴为步数（x="step"）或秒数（x="seconds"）。"""
        from lmcourse.viz import plot_curves

        names = {"train_loss": "训练损失", "valid_loss": "验证损失", "valid_ppl": "验证困惑度"}
        curves = {names.get(k, k): ([r[x] for r in self.records if k in r], self.column(k)) for k in keys}
        kwargs.setdefault("xlabel", "训练步数" if x == "step" else "训练时间（秒）")
        return plot_curves(curves, ax=ax, **kwargs)


def evaluate(model, batches, loss_fn, totals=False):
    """全书唯一的评估循环：在一批批数据上求加权平均损失。loss_fn(model, batch) 返回 (损失之和, 样本数)。

    totals=True 时不求平均，返回 (损失之和, 样本数) 两个总数（目标的 metrics 要用）。
    """
    import torch

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            s, n = loss_fn(model, batch)
            total += float(s)
            count += int(n)
    model.train(was_training)
    if count == 0:
        raise ValueError("参数 batches 为空，无法评估")
    return (total, count) if totals else total / count


def schedule(optimizer, steps, warmup=0, kind="linear", min_ratio=0.0):
    """学习率调度：前 warmup 步从 0 线性升到峰值，之后按 kind 衰减到 峰值 × min_ratio。

    kind：constant（不衰减）、linear（线性，BERT 的做法）、cosine（余弦）。warmup 可以是步数或 [0, 1) 的比例。
    """
    import torch

    steps = check_int("steps", steps, minimum=1)
    kind = check_choice("kind", kind, SCHEDULES)
    check_number("min_ratio", min_ratio, minimum=0, maximum=1)
    n_warm = int(steps * warmup) if isinstance(warmup, float) and warmup < 1 else check_int("warmup", warmup, minimum=0)

    def factor(s):                           # s = 已完成的步数，0, 1, …
        if s < n_warm:
            return (s + 1) / n_warm
        t = (s - n_warm) / max(1, steps - n_warm)
        decay = {"constant": 1.0, "linear": 1.0 - t, "cosine": 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))}[kind]
        return min_ratio + (1 - min_ratio) * max(0.0, decay)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def adamw(model, lr, weight_decay=0.01):
    """AdamW；偏置和 LayerNorm 的参数不做权重衰减（BERT 的做法）。"""
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 or "norm" in name.lower() else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def dist_info():
    """(本进程编号 rank, 进程总数 world)；没有用 torchrun 启动时为 (0, 1)。"""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _rng_state():
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (kind, keys.tolist(), pos, has_gauss, cached)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_state(path, model, optimizer, scheduler, history, scaler=None):
    """续训用的完整状态：模型、优化器、调度器、（fp16 的）梯度缩放器、步数、随机数状态、记录。"""
    import torch

    path = Path(path)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "step": history.last.get("step", 0), "rng": _rng_state(), "history": history.records}, tmp)
    tmp.replace(path)                         # 先写临时文件再改名：中途被打断也不会留下坏文件


def load_state(path, model, optimizer, scheduler, scaler=None):
    """读 save_state 写的状态（weights_only=True），放回模型、优化器、调度器和随机数发生器，返回 History。"""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    _unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    return History(list(state["history"]))


def _unwrap(model):
    return getattr(model, "module", model)


def fit(model, get_batch, loss_fn, steps, lr=1e-3, optimizer=None, scheduler=None, eval_fn=None, eval_every=None,
        clip=1.0, accum=1, desc="训练", history=None, progress=True, state_path=None, scaler=None):
    """训练到第 steps 步（从 history 的最后一步接着数），返回 History。

    - get_batch(i) 给出第 i 个小批（i 从 1 数起）；accum > 1 时每步累积 accum 个小批的梯度。
    - loss_fn(model, batch) 返回 (损失之和, 计数)，与 evaluate 的约定相同，例如交叉熵之和与被预测的 token 数。
      每步的损失 = 整步（所有小批、所有进程）的损失之和 ÷ 整步的计数，所以结果与进程数、累积次数无关。
    - scheduler 每步调用一次；eval_fn(model) 返回指标字典，每 eval_every 步和最后一步调用（只在 0 号进程）。
    - state_path：每次评估时把完整状态写到这里；文件已存在时先读回来，接着训练（断点续训），
      结果与一口气训练完全相同（前提是 get_batch(i) 只由 i 决定）。
    - scaler：fp16 训练用的 torch.amp.GradScaler（反向前放大损失，更新前缩回、跳过溢出的步）。
    """
    import torch
    import torch.distributed as dist
    from tqdm.auto import tqdm

    steps = check_int("steps", steps, minimum=1)
    accum = check_int("accum", accum, minimum=1)
    check_number("lr", lr, minimum=0, strict=True)
    eval_every = check_int("eval_every", eval_every or max(1, steps // 10), minimum=1)
    rank, world = dist_info()
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = history if history is not None else History()
    if state_path is not None and Path(state_path).exists():
        history = load_state(state_path, model, optimizer, scheduler, scaler)
    start = history.last.get("step", 0)
    if start >= steps:
        return history
    elapsed = history.last.get("seconds", 0.0)
    # 进程间求和的数放在参数所在的设备上：NCCL（GPU）只归约 GPU 上的张量，gloo（CPU）两样都行
    where = device_of(model)

    def all_sum(x):                                              # 所有进程的和（单进程时原样返回）
        x = torch.as_tensor(x, dtype=torch.float32, device=where)
        if world > 1:
            dist.all_reduce(x)
        return x

    model.train()
    running, n_running, t0 = 0.0, 0, time.perf_counter()
    bar = tqdm(range(start + 1, steps + 1), desc=desc, disable=not progress or rank != 0, leave=False)
    for step in bar:
        optimizer.zero_grad(set_to_none=True)
        step_loss, step_n = 0.0, 0
        for i in range(accum):
            batch = get_batch((step - 1) * accum + i + 1)
            if world > 1:                                         # DDP：前 accum-1 个小批只在本地累加梯度，
                model.require_backward_grad_sync = i == accum - 1  # 最后一个才全归约（no_sync() 用的也是这个开关）
            loss_sum, n = loss_fn(model, batch)
            if i == 0:                                            # 整步的计数要等所有小批前向完才知道，
                guess = all_sum(float(n) * accum)                 # 先按"第一个小批 × accum"估计（accum = 1 时就是准数）
            loss = loss_sum * (world / guess)                     # DDP 会把各进程的梯度取平均，这里先乘回 world
            (loss if scaler is None else scaler.scale(loss)).backward()
            step_loss = step_loss + loss_sum.detach()
            step_n += float(n)
        total = all_sum(step_n)
        if accum > 1 and total != guess:                          # 估计不准：把梯度校正到 ÷ 真正的计数
            for p in model.parameters():
                if p.grad is not None:
                    p.grad.mul_(guess / total)
        if scaler is not None:
            scaler.unscale_(optimizer)                            # 先缩回真实的梯度，裁剪才有意义
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)                                # 梯度里有 inf / NaN 时跳过这一步
            scaler.update()
        if scheduler is not None:
            scheduler.step()
        running += all_sum(step_loss).item() / total.item()
        n_running += 1
        if step % eval_every == 0 or step == steps:
            record = {"step": step, "seconds": elapsed + time.perf_counter() - t0, "train_loss": running / n_running}
            if eval_fn is not None and rank == 0:
                t_eval = time.perf_counter()
                record.update(eval_fn(_unwrap(model)))
                model.train()
                t0 += time.perf_counter() - t_eval                  # seconds 只算训练，不算评估
            history.records.append(record)
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k.endswith(("loss", "ppl", "acc"))})
            running, n_running = 0.0, 0
            if state_path is not None and rank == 0:
                save_state(state_path, model, optimizer, scheduler, history, scaler)
    bar.close()
    return history
