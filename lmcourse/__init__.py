"""lmcourse：《语言模型：从 LSTM 到 ERNIE》的配套小工具包。

顶层只放轻量函数；torch 等重模块在用到时才导入，`import lmcourse` 很快。
"""
from lmcourse._check import check_int

__version__ = "0.1.0"
__all__ = ["set_seed", "num_threads", "get_device", "device_of", "to_device", "__version__"]


def set_seed(seed=0):
    """固定 random / numpy / torch 的随机种子，使结果可复现（线程数另由 num_threads 设）。"""
    check_int("seed", seed, minimum=0)
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


class num_threads:
    """把 torch 的线程数设为 n。直接调用时一直有效；用在 with 里时，出了这一块恢复原来的线程数（出错也恢复）。"""

    def __init__(self, n):
        check_int("n", n, minimum=1)
        import torch

        self.previous = torch.get_num_threads()
        torch.set_num_threads(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.previous)
        return False


def device_of(model):
    """模型参数所在的设备：函数新建的张量都放到这里（CPU 上建好的批次也搬过来）。"""
    return next(model.parameters()).device


def to_device(batch, device):
    """把一批（张量字典）搬到 device；在 CUDA 上从锁页内存异步拷贝。"""
    import torch

    cuda = torch.device(device).type == "cuda"
    return {k: (v.pin_memory() if cuda else v).to(device, non_blocking=cuda) for k, v in batch.items()}


def get_device():
    """有 CUDA 时返回 cuda，否则返回 cpu。"""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
