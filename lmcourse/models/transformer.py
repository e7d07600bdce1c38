"""Transformer（Vaswani 等，2017）：正弦位置编码、编码器层、解码器层。"""
import math

import torch

from lmcourse._check import check_int


def sinusoidal_encoding(max_len, d_model, base=10000.0):
    """正弦 / 余弦位置编码，形状 (max_len, d_model)。

    PE(pos, 2i) = sin(pos / base^(2i/d_model))，PE(pos, 2i+1) = cos(pos / base^(2i/d_model))。
    d_model 须为正偶数。
    """
    check_int("max_len", max_len, minimum=1)
    check_int("d_model", d_model, minimum=2)
    if d_model % 2:
        raise ValueError(f"参数 d_model 应为偶数（正弦、余弦成对出现），收到 {d_model}")
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)        # (L, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)            # (d/2,)
    angle = pos / base ** (two_i / d_model)                             # (L, d/2)
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.to(torch.get_default_dtype())
