"""全书唯一的训练循环 lmcourse.train：学习率调度、梯度累积、接着训练、评估的加权平均。"""
import pytest
import torch

from lmcourse.train import History, evaluate, fit, schedule


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def test_schedule_warmup_then_decay():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = schedule(opt, 100, warmup=0.1, kind="linear")
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0) and max(lrs) == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] < 0.02
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = schedule(opt, 10, warmup=0, kind="cosine", min_ratio=0.1)
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="kind"):
        schedule(opt, 10, kind="step")


def _sum(model, batch):
    """最小的 loss_fn：(平方误差之和, 样本数)。"""
    x, y = batch
    return ((model(x) - y) ** 2).sum(), len(x)


def test_accumulation_equals_one_big_batch():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=g), torch.randn(64, 1, generator=g)

    def run(accum):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        size = 16 // accum
        fit(model, lambda i: (x[(i - 1) * size % 64:][:size], y[(i - 1) * size % 64:][:size]), _sum, 8,
            lr=0.01, accum=accum, progress=False)
        return model.state_dict()

    assert _max_diff(run(1), run(4)) < 1e-6


def test_each_step_is_normalised_by_the_whole_step_count_even_with_uneven_micro_batches():
    """小批大小不同时（3 + 1 个样本），累积两步与把 4 个样本放一批完全等价：除以整步的计数，不是各小批平均再平均。"""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 4, generator=g, dtype=torch.float64), torch.randn(4, 1, generator=g, dtype=torch.float64)

    def run(accum, parts, loss_fn=_sum):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1).double()
        fit(model, lambda i: parts[(i - 1) % accum], loss_fn, 3, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            accum=accum, clip=0, progress=False)
        return model.state_dict()

    one, uneven = run(1, [(x, y)]), [(x[:3], y[:3]), (x[3:], y[3:])]
    assert _max_diff(one, run(2, uneven)) < 1e-7                          # 计数以 float32 归约：误差在 1e-8 量级
    assert _max_diff(one, run(2, [(x[:1], y[:1]), (x[1:], y[1:])])) < 1e-7

    def per_batch_mean(m, b):                                             # 先各小批平均再平均：结果就不同了
        return _sum(m, b)[0] / len(b[0]), 1

    assert _max_diff(one, run(2, uneven, per_batch_mean)) > 1e-3


def test_fit_counts_from_history_and_checks_input():
    model = torch.nn.Linear(2, 1)
    batch = (torch.ones(3, 2), torch.zeros(3, 1))
    hist = fit(model, lambda i: batch, _sum, 4, lr=0.1, progress=False, eval_every=2)
    assert [r["step"] for r in hist.records] == [2, 4]
    hist = fit(model, lambda i: batch, _sum, 6, lr=0.1, progress=False, eval_every=2, history=hist)
    assert [r["step"] for r in hist.records] == [2, 4, 6] and isinstance(hist, History)
    with pytest.raises(ValueError, match="accum"):
        fit(model, lambda i: batch, _sum, 2, accum=0)




def test_fit_learns_and_records_seconds_without_evaluation_time():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    w = torch.tensor([[1.0, -2.0, 0.5]])
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(40, 8, 3, generator=g)

    def get_batch(i):
        x = xs[(i - 1) % 40]
        return x, x @ w.T

    hist = fit(model, get_batch, _sum, 200, lr=0.05, progress=False,
               eval_every=50, eval_fn=lambda m: {"w_err": (m.weight - w).abs().max().item()})
    assert hist.column("w_err")[-1] < 0.05 < hist.column("w_err")[0]
    assert hist.column("train_loss")[-1] < hist.column("train_loss")[0] / 10
    assert all(a < b for a, b in zip(hist.column("seconds"), hist.column("seconds")[1:]))


def test_evaluate_is_a_weighted_mean_and_restores_training_mode():
    model = torch.nn.Dropout(0.5).train()
    batches = [(torch.ones(1), 3.0, 1), (torch.ones(3), 1.0, 3)]           # 两批：1 个样本损失 3，3 个样本损失各 1
    loss = evaluate(model, batches, lambda m, b: (b[1] * b[2], b[2]))
    assert loss == pytest.approx((3.0 + 3.0) / 4) and model.training
    with pytest.raises(ValueError, match="batches"):
        evaluate(model, [], lambda m, b: (0.0, 0))


def test_collectives_use_the_parameters_device(monkeypatch):
    """fit 在进程间归约的张量必须放在参数所在的设备上（NCCL 只收 GPU 张量）。没有 GPU 时这样查：
    把默认设备设成 meta，参数留在 CPU；凡是没指定设备新建的张量都会落到 meta 上，被记录下来的归约就会露馅。"""
    import lmcourse.train as train

    seen = []

    def all_reduce(x, *args, **kwargs):                               # 两个进程的和 = 2 倍
        seen.append(x.device)
        assert x.device == torch.device("cpu"), f"归约的张量在 {x.device} 上，参数在 cpu 上"
        x.mul_(2)

    monkeypatch.setattr(train, "dist_info", lambda: (0, 2))
    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    model = torch.nn.Linear(4, 1)
    batch = (torch.ones(3, 4), torch.zeros(3, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with torch.device("meta"):
        fit(model, lambda i: batch, _sum, 2, optimizer=opt, accum=2, clip=0, progress=False)
    assert seen and all(d == torch.device("cpu") for d in seen)


def test_fit_with_a_grad_scaler_matches_plain_fit():
    """fp16 用的梯度缩放（这里在 CPU 上用 float32 试）：放大损失、更新前缩回，结果与不缩放相同；状态随续训保存。"""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=g), torch.randn(32, 1, generator=g)

    def run(scaler, steps=6, path=None):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        fit(model, lambda i: (x[(i - 1) % 4 * 8:][:8], y[(i - 1) % 4 * 8:][:8]), _sum, steps, lr=0.05, accum=2,
            progress=False, scaler=scaler, state_path=path, eval_every=3)
        return model.state_dict()

    plain = run(None)
    scaled = run(torch.amp.GradScaler("cpu", init_scale=2.0 ** 10))
    assert _max_diff(plain, scaled) < 1e-6 and _max_diff(plain, run(None, steps=5)) > 1e-4
