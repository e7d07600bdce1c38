"""Bengio 等（2003）的前馈神经网络语言模型（NNLM）。

y = b + W·x + U·tanh(d + H·x)，x 是前 n-1 个字的词向量拼接（W 为可选的"直连"）。
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse import ckpt, device_of
from lmcourse._check import Config, check_int, check_number, check_type


# 预训练命令的尺寸（--preset）；small 即默认配置
SIZES = {"tiny": dict(embed_dim=16, hidden_dim=32), "small": {}, "medium": dict(embed_dim=128, hidden_dim=512),
         "base": dict(embed_dim=256, hidden_dim=1024)}


@dataclass
class NNLMConfig(Config):
    vocab_size: int = 4138
    context: int = 4        # 看前 n-1 个字
    embed_dim: int = 64     # 词向量维度 m
    hidden_dim: int = 256   # 隐藏层宽度 h
    direct: bool = False    # 是否有从词向量直连输出的 W
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "context", "embed_dim", "hidden_dim"):
            check_int(f"config.{name}", getattr(self, name), minimum=1)
        check_type("config.direct", self.direct, bool, "布尔值")
        check_number("config.dropout", self.dropout, minimum=0, maximum=0.99)


def _check_context(context, n):
    if context.dim() != 2 or context.size(1) != n:
        raise ValueError(f"参数 context 的形状应为 (B, {n})，收到 {tuple(context.shape)}")


class NNLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)        # C
        self.hidden = nn.Linear(config.context * config.embed_dim, config.hidden_dim)  # H, d
        self.out = nn.Linear(config.hidden_dim, config.vocab_size)            # U, b
        self.direct = nn.Linear(config.context * config.embed_dim, config.vocab_size, bias=False) if config.direct else None
        self.drop = nn.Dropout(config.dropout)

    def forward(self, context):
        """context: (B, n-1) 的字 id -> logits (B, V)。"""
        _check_context(context, self.config.context)
        x = self.embed(context).flatten(1)           # (B, (n-1)·m)
        h = torch.tanh(self.hidden(self.drop(x)))    # (B, h)
        logits = self.out(self.drop(h))              # (B, V)
        if self.direct is not None:
            logits = logits + self.direct(x)
        return logits


def windows(stream, positions, context):
    """从 id 序列取出 (上下文, 目标)：目标是 stream[i]，上下文是它前面 context 个 id（不足时用开头补齐）。"""
    check_int("context", context, minimum=1)
    idx = positions.unsqueeze(1) - torch.arange(context, 0, -1)   # (B, n-1)
    return stream[idx.clamp(min=0)], stream[positions]


def lm_loss(model, batch):
    """(交叉熵之和, 预测的字数)：train.fit 训练、evaluate 评估都用它。"""
    x, y = batch                                                  # (B, n-1), (B,)
    return F.cross_entropy(model(x), y, reduction="sum"), len(y)


def lm_eval_batches(stream, context, batch_size=4096):
    """评估用：依次给出序列里第 1 个之后的每个位置。"""
    for start in range(1, len(stream), batch_size):
        pos = torch.arange(start, min(start + batch_size, len(stream)))
        yield windows(stream, pos, context)


@torch.no_grad()
def sample(model, context_ids, length, generator=None, temperature=1.0):
    """从 NNLM 逐字抽样 length 个 id。"""
    model.eval()
    ids, device = list(context_ids), device_of(model)
    n = model.config.context
    for _ in range(check_int("length", length, minimum=0)):
        ctx = torch.tensor([([ids[0]] * n + ids)[-n:]], device=device)
        probs = F.softmax(model(ctx)[0] / temperature, dim=-1)
        ids.append(int(torch.multinomial(probs.cpu(), 1, generator=generator)))   # 在 CPU 上抽：与设备无关
    return ids[len(ids) - length:]


# ---------- 检查点：同一结构，训练得更久（配方见仓库的 recipes/lm.py） ----------


def from_checkpoint():
    """载入随包分发的 NNLM 检查点，返回 (model, meta)。"""
    return ckpt.load("nnlm", lambda meta: NNLM(NNLMConfig.from_dict(meta["config"])))
