"""计时：全书量速度的唯一办法（torch.utils.benchmark），各章不再各写一个计时循环。

机器上别的进程只会让代码变慢，所以只打印、不断言；make bench 另外逐章计时。
"""
from lmcourse._check import check_int, check_number


def best_time(fn, min_run_time=0.2, threads=None):
    """fn() 跑一次的用时（秒）：torch.utils.benchmark 反复运行至少 min_run_time 秒，取各组里最快的一组。

    机器上别的进程只会让代码变慢，所以取最小值而不是中位数：中位数在机器忙时会被整体抬高（timeit 也这样建议）。

    threads：计时用的线程数，默认是当前的 torch.get_num_threads()（Timer 自己默认只用 1 个线程）。
    """
    import torch
    from torch.utils import benchmark

    if not callable(fn):
        raise TypeError(f"参数 fn 应为可调用的函数，收到 {type(fn).__name__}")
    check_number("min_run_time", min_run_time, minimum=0, strict=True)
    threads = torch.get_num_threads() if threads is None else check_int("threads", threads, minimum=1)
    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=threads)
    return min(timer.blocked_autorange(min_run_time=min_run_time).times)
