"""lmcourse：《语言模型：从 LSTM 到 ERNIE》的配套小工具包。

顶层只放轻量函数；torch 等重模块在用到时才导入，`import lmcourse` 很快。
"""
from lmcourse._check import check_int

__version__ = "0.1.0"
__all__ = ["set_seed", "get_device", "__version__"]


def set_seed(seed=0, threads=2):
    """固定 random / numpy / torch 的随机种子，并固定 torch 的线程数，使结果可复现。"""
    check_int("seed", seed, minimum=0)
    check_int("threads", threads, minimum=1)
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    return seed


def get_device():
    """有 CUDA 时返回 cuda，否则返回 cpu。"""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
