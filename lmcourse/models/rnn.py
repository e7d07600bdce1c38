"""字符级循环神经网络语言模型（RNNLM）：RNN / GRU / LSTM 三选一，训练用 torch 的融合实现。

输出层可选自适应 softmax（Grave 等，2017）：常用字走小的"头部"，罕见字分簇放进"尾部"，CPU 上快几倍。
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse import ckpt, device_of, metrics
from lmcourse._check import Config, check_choice, check_cutoffs, check_int, check_number, check_type

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


# 预训练命令的尺寸（--preset）；small 即默认配置
SIZES = {"tiny": dict(embed_dim=32, hidden_dim=64), "small": {}, "medium": dict(embed_dim=256, hidden_dim=1024),
         "base": dict(embed_dim=512, hidden_dim=1024, num_layers=2)}


@dataclass
class RNNLMConfig(Config):
    vocab_size: int = 4138
    cell: str = "lstm"           # rnn / gru / lstm
    embed_dim: int = 256
    hidden_dim: int = 512
    num_layers: int = 1
    dropout: float = 0.0
    adaptive: bool = True         # 自适应 softmax
    cutoffs: tuple = (500, 1500)  # 头部 500 个最常用字，其余分两簇

    def __post_init__(self):
        check_choice("config.cell", self.cell, tuple(CELLS))
        for name in ("vocab_size", "embed_dim", "hidden_dim", "num_layers"):
            check_int(f"config.{name}", getattr(self, name), minimum=1)
        check_number("config.dropout", self.dropout, minimum=0, maximum=0.99)
        check_type("config.adaptive", self.adaptive, bool, "布尔值")
        if self.adaptive:
            check_cutoffs(self.cutoffs, self.vocab_size)


class CharRNNLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        check_type("config", config, RNNLMConfig, "RNNLMConfig")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.rnn = CELLS[config.cell](config.embed_dim, config.hidden_dim, config.num_layers, batch_first=True,
                                      dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        if config.adaptive:
            self.head = nn.AdaptiveLogSoftmaxWithLoss(config.hidden_dim, config.vocab_size, list(config.cutoffs), div_value=4.0)
        else:
            self.head = nn.Linear(config.hidden_dim, config.vocab_size)

    def features(self, x, state=None):
        """x: (B, T) 字 id -> 每个时刻的隐藏状态 (B, T, H) 和最后的状态。"""
        if x.dim() != 2:
            raise ValueError(f"参数 x 的形状应为 (B, T)，收到 {tuple(x.shape)}")
        h, state = self.rnn(self.drop(self.embed(x)), state)   # (B, T, H)
        return self.drop(h), state

    def log_probs(self, x, state=None):
        """下一个字的对数概率 (B, T, V) 和最后的状态。"""
        h, state = self.features(x, state)
        if self.config.adaptive:
            return self.head.log_prob(h.flatten(0, 1)).view(*h.shape[:2], -1), state
        return F.log_softmax(self.head(h), dim=-1), state

    def nll(self, x, y, state=None):
        """平均负对数似然：用 x 的每个位置预测 y 的同一位置。返回 (loss, 最后的状态)。"""
        h, state = self.features(x, state)
        flat_h, flat_y = h.flatten(0, 1), y.flatten()            # (B·T, H), (B·T,)
        if self.config.adaptive:
            return self.head(flat_h, flat_y).loss, state
        return F.cross_entropy(self.head(flat_h), flat_y), state


def detach_state(state):
    """截断随时间反向传播：保留状态的值，切断梯度。"""
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def stream_batches(stream, batch_size, seq_len):
    """把一条长序列切成 batch_size 条平行的子序列，按 seq_len 一段段给出 (x, y)，状态可以跨段传递。"""
    check_int("batch_size", batch_size, minimum=1)
    check_int("seq_len", seq_len, minimum=1)
    n = (len(stream) - 1) // batch_size
    xs = stream[: n * batch_size].view(batch_size, n)             # (B, N)
    ys = stream[1: n * batch_size + 1].view(batch_size, n)
    for start in range(0, n, seq_len):
        yield xs[:, start:start + seq_len], ys[:, start:start + seq_len]


@torch.no_grad()
def perplexity(model, stream, batch_size=16, seq_len=256):
    """在一条 id 序列上的困惑度：预测第 1 个之后的每个 token（状态跨段传递）。

    序列切成 batch_size 条平行子序列，状态只在子序列内传递：每条子序列从零状态开始，开头的 token 作为起点，
    它本身由上一条子序列的最后一步预测，所以每个 token 最多看到所在子序列里的上文。没有被预测的只有整条序列的
    第一个 token 和末尾凑不满一列的几个（合起来不超过 batch_size 个），影响可忽略。
    """
    model.eval()
    total, count, state, device = 0.0, 0, None, device_of(model)
    for x, y in stream_batches(stream, batch_size, seq_len):
        loss, state = model.nll(x.to(device), y.to(device), state)
        total += loss.item() * y.numel()
        count += y.numel()
    return metrics.perplexity(total / count)


@torch.no_grad()
def sample(model, prefix_ids, length, generator=None, temperature=1.0):
    """从模型逐字抽样 length 个 id（prefix_ids 先读进去作为上文）。"""
    model.eval()
    check_int("length", length, minimum=0)
    device = device_of(model)
    logp, state = model.log_probs(torch.tensor([list(prefix_ids)], device=device))
    out = []
    for _ in range(length):
        probs = F.softmax(logp[0, -1] / temperature, dim=-1)
        nxt = int(torch.multinomial(probs.cpu(), 1, generator=generator))      # 在 CPU 上抽：与设备无关
        out.append(nxt)
        logp, state = model.log_probs(torch.tensor([[nxt]], device=device), state)
    return out


# ---------- 检查点：python -m lmcourse.ckpt lstm_lm（配方见仓库的 recipes/lm.py） ----------


def from_checkpoint():
    """载入随包分发的 LSTM 语言模型检查点，返回 (model, meta)。"""
    return ckpt.load("lstm_lm", lambda meta: CharRNNLM(RNNLMConfig.from_dict(meta["config"])))
