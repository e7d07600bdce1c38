"""训练与评估循环：带 tqdm 进度条，并把过程记进一个能画图的 History。"""
import time
from dataclasses import dataclass, field

from lmcourse._check import check_int, check_number


@dataclass
class History:
    """训练记录：每次评估一行，含步数、已用秒数、这段时间的平均训练损失和评估指标。"""

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


def evaluate(model, batches, loss_fn):
    """在一批批数据上求加权平均损失。loss_fn(model, batch) 返回 (损失之和, 样本数)。"""
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
    return total / count


def fit(model, get_batch, loss_fn, steps, lr=1e-3, optimizer=None, eval_fn=None, eval_every=None,
        clip=1.0, desc="训练", history=None, progress=True, scheduler=None):
    """用 Adam（或给定的 optimizer）训练 steps 步。

    get_batch(step) 给出一个批次；loss_fn(model, batch) 返回标量损失；
    scheduler 为可选的学习率调度器，每步调用一次；
    eval_fn(model) 返回指标字典（如 {"valid_loss": ...}），每 eval_every 步和最后一步调用。
    返回 History（可在其上继续训练）。
    """
    import torch
    from tqdm.auto import tqdm

    steps = check_int("steps", steps, minimum=1)
    check_number("lr", lr, minimum=0, strict=True)
    eval_every = check_int("eval_every", eval_every or max(1, steps // 10), minimum=1)
    history = history if history is not None else History()
    start_step = history.last.get("step", 0)
    elapsed = history.last.get("seconds", 0.0)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    running, n_running, t0 = 0.0, 0, time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False)
    for step in bar:
        loss = loss_fn(model, get_batch(start_step + step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        running += loss.item()
        n_running += 1
        if step % eval_every == 0 or step == steps:
            record = {"step": start_step + step, "seconds": elapsed + time.perf_counter() - t0,
                      "train_loss": running / n_running}
            if eval_fn is not None:
                record.update(eval_fn(model))
                model.train()
            history.records.append(record)
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k.endswith("loss")})
            running, n_running = 0.0, 0
    bar.close()
    return history
