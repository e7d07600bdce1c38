"""ELMo（Peters 等，2018）：双向语言模型（biLM）各层的加权和，作为"随上下文变化"的字向量。

biLM = 前向 LSTM 语言模型（从左读，预测下一个字）+ 后向 LSTM 语言模型（从右读，预测上一个字），
两个方向共享输入的字向量和输出的 softmax，各有自己的 L 层 LSTM，层与层之间有残差连接。
第 j 层的表示是两个方向隐藏状态的拼接 [→h_j; ←h_j]；第 0 层是字向量本身，拼两份 [x; x] 对齐维数。
下游任务用 ScalarMix 学一组 softmax 归一化的层权重 s_j 和一个缩放 γ：ELMo = γ Σ_j s_j h_j。
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse import ckpt, device_of
from lmcourse._check import Config, check_cutoffs, check_int, check_number, check_type
from lmcourse.metrics import perplexity
from lmcourse.text import pad_batch


# 预训练命令的尺寸（--preset）；small 即默认配置
SIZES = {"tiny": dict(dim=32), "small": {}, "medium": dict(dim=384), "base": dict(dim=512)}


@dataclass
class ELMoConfig(Config):
    vocab_size: int = 4138
    dim: int = 256                # 字向量维数 = 每个方向每层 LSTM 的隐藏维数
    num_layers: int = 2           # 每个方向的 LSTM 层数 L
    dropout: float = 0.1
    cutoffs: tuple = (500, 1500)  # 自适应 softmax 的分簇（见第 2 章）

    def __post_init__(self):
        for name in ("vocab_size", "dim", "num_layers"):
            check_int(f"config.{name}", getattr(self, name), minimum=1)
        check_number("config.dropout", self.dropout, minimum=0, maximum=0.99)
        check_cutoffs(self.cutoffs, self.vocab_size)


def reverse_padded(x, lengths):
    """把右侧填充的批 (B, T, ...) 中每条序列的有效部分各自倒过来，填充位置不动。"""
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device).expand(B, T)                 # (B, T)
    lengths = lengths.to(x.device)
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    if x.dim() == 3:
        idx = idx.unsqueeze(-1).expand_as(x)
    return x.gather(1, idx)


class BiLM(nn.Module):
    """双向 LSTM 语言模型。layers(x) 给出 L+1 层表示，nll(x) 给出两个方向的语言模型损失。"""

    def __init__(self, config):
        super().__init__()
        self.config = config
        d = config.dim
        self.embed = nn.Embedding(config.vocab_size, d)                 # 两个方向共享
        self.forward_lstms = nn.ModuleList(nn.LSTM(d, d, batch_first=True) for _ in range(config.num_layers))
        self.backward_lstms = nn.ModuleList(nn.LSTM(d, d, batch_first=True) for _ in range(config.num_layers))
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.AdaptiveLogSoftmaxWithLoss(d, config.vocab_size, list(config.cutoffs), div_value=4.0)  # 共享

    @staticmethod
    def _run(lstms, h, drop):
        """逐层跑一个方向的 LSTM，第 2 层起加残差。返回每层的输出列表，各 (B, T, d)。"""
        outs = []
        for j, lstm in enumerate(lstms):
            out, _ = lstm(drop(h))                                      # (B, T, d)
            h = out + h if j > 0 else out
            outs.append(h)
        return outs

    def directions(self, x, lengths=None):
        """x (B, T) -> 字向量 (B, T, d)，前向各层 [(B, T, d)]，后向各层 [(B, T, d)]（已对齐回原顺序）。"""
        _check_ids_2d(x)
        if lengths is None:
            lengths = torch.full((x.size(0),), x.size(1), device=x.device)
        e = self.embed(x)                                               # (B, T, d)
        fwd = self._run(self.forward_lstms, e, self.drop)
        bwd = self._run(self.backward_lstms, reverse_padded(e, lengths), self.drop)
        return e, fwd, [reverse_padded(h, lengths) for h in bwd]

    def layers(self, x, lengths=None):
        """ELMo 的 L+1 层表示，堆成 (L+1, B, T, 2d)：第 0 层 [x; x]，第 j 层 [→h_j; ←h_j]。"""
        e, fwd, bwd = self.directions(x, lengths)
        reps = [torch.cat([e, e], -1)] + [torch.cat([f, b], -1) for f, b in zip(fwd, bwd)]
        return torch.stack(reps)                                        # (L+1, B, T, 2d)

    def nll(self, x):
        """一批不含填充的连续文本 x (B, T) 上两个方向的平均负对数似然 (前向, 后向)。

        前向用位置 t 的顶层状态预测 x[t+1]，后向用位置 t 的顶层状态预测 x[t-1]。
        """
        _, fwd, bwd = self.directions(x)
        f, b = self.drop(fwd[-1]), self.drop(bwd[-1])
        d = self.config.dim
        loss_f = self.head(f[:, :-1].reshape(-1, d), x[:, 1:].reshape(-1)).loss
        loss_b = self.head(b[:, 1:].reshape(-1, d), x[:, :-1].reshape(-1)).loss
        return loss_f, loss_b


def _check_ids_2d(x):
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"参数 x 应为 (B, T) 的 id 张量，收到 {getattr(x, 'shape', type(x).__name__)}")


def _check_layers(layers, n):
    check_type("layers", layers, torch.Tensor, "torch.Tensor")
    if layers.size(0) != n:
        raise ValueError(f"参数 layers 的第 0 维应为层数 {n}，收到 {layers.size(0)}")


class ScalarMix(nn.Module):
    """ELMo 的任务相关加权：γ Σ_j softmax(w)_j h_j。w 初始全 0（各层等权），γ 初始 1。"""

    def __init__(self, num_layers):
        super().__init__()
        check_int("num_layers", num_layers, minimum=1)
        self.w = nn.Parameter(torch.zeros(num_layers))
        self.gamma = nn.Parameter(torch.ones(()))

    @property
    def weights(self):
        return F.softmax(self.w, dim=0)                                 # s_j

    def forward(self, layers):
        """layers (L+1, ..., D) -> (..., D)。"""
        _check_layers(layers, self.w.numel())
        return self.gamma * torch.tensordot(self.weights, layers, dims=1)   # Σ_j s_j h_j


def encode_texts(model, tokenizer, texts, batch_size=64):
    """把若干句子送进 biLM，返回每句的各层表示列表 [(L+1, T_i, 2d)]。句子两端各加一个 [SEP]（训练时的句界）。"""
    check_type("texts", texts, (list, tuple), "字符串列表")
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))       # 按长度分批，少算填充；结果仍按原顺序
    out = [None] * len(texts)
    with torch.no_grad():
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            ids = [[tokenizer.sep_id] + tokenizer.encode(texts[i]) + [tokenizer.sep_id] for i in idx]
            x, lengths = pad_batch(ids, tokenizer.pad_id)                    # (B, T), (B,)
            device = device_of(model)
            reps = model.layers(x.to(device), lengths.to(device))       # (L+1, B, T, 2d)
            for b, (i, n) in enumerate(zip(idx, lengths.tolist())):
                out[i] = reps[:, b, 1:n - 1].clone()                    # 去掉两端的 [SEP]；clone 以免拖住整批
    return out


def window_features(reps, k):
    """对照组“只看邻居”：每个位置取左右各 k 个字的静态字向量（第 0 层）拼起来，越界处补 0。

    reps 是 encode_texts 的输出 [(L+1, T, 2d)]，返回 [(T, (2k+1)·d)]。
    """
    check_type("reps", reps, (list, tuple), "encode_texts 返回的列表")
    check_int("k", k, minimum=0)
    out = []
    for r in reps:
        x = r[0, :, :r.size(-1) // 2]                                   # (T, d)：第 0 层是 [x; x]，取一半
        x = F.pad(x, (0, 0, k, k))                                      # (T+2k, d)
        out.append(x.unfold(0, 2 * k + 1, 1).transpose(1, 2).reshape(x.size(0) - 2 * k, -1))  # (T, (2k+1)·d)
    return out


@torch.no_grad()
def perplexities(model, stream, seq_len=128, batch_size=32):
    """在一条 id 序列上分段（每段独立、不传状态）求前向和后向的困惑度。"""
    model.eval()
    n = (len(stream) // seq_len) * seq_len
    chunks = stream[:n].view(-1, seq_len)                               # (N, T)
    tot_f = tot_b = 0.0
    for i in range(0, len(chunks), batch_size):
        lf, lb = model.nll(chunks[i:i + batch_size])
        k = chunks[i:i + batch_size].size(0)
        tot_f, tot_b = tot_f + lf.item() * k, tot_b + lb.item() * k
    return perplexity(tot_f / len(chunks)), perplexity(tot_b / len(chunks))


# ---------- 检查点：python -m lmcourse.ckpt elmo（配方见仓库的 recipes/lm.py） ----------


def from_checkpoint():
    """载入随包分发的 biLM 检查点，返回 (model, meta)。"""
    return ckpt.load("elmo", lambda meta: BiLM(ELMoConfig.from_dict(meta["config"])))
