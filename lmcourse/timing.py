"""计时：全书量速度的唯一办法（torch.utils.benchmark），各章不再各写一个计时循环。

机器上别的进程只会让代码变慢，所以只打印、不断言；make bench 另外逐章计时。
"""
from lmcourse._check import check_number


def best_time(fn, min_run_time=0.2):
    """fn() 跑一次的用时（秒）：torch.utils.benchmark 反复运行至少 min_run_time 秒，取中位数。"""
    from torch.utils import benchmark

    if not callable(fn):
        raise TypeError(f"参数 fn 应为可调用的函数，收到 {type(fn).__name__}")
    check_number("min_run_time", min_run_time, minimum=0, strict=True)
    return benchmark.Timer("fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median
