"""注意力机制：打分函数、缩放点积注意力、多头注意力、注意力池化。

注意力的本质是加权求和，分三步：
1. 打分：query 与每个 key 算相似度 s_j = score(q, k_j)；
2. 归一化：softmax 把分数变成和为 1 的权重 a_j；
3. 加权求和：输出 = Σ_j a_j v_j。
掩码沿用 torch.nn.MultiheadAttention 的布尔约定：True 表示"不许看"
（注意 torch.nn.functional.scaled_dot_product_attention 的布尔掩码恰好相反）；
浮点掩码直接加到分数上（-inf 表示不许看）。
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from lmcourse._check import check_choice, check_int, check_number, check_type

SCORE_KINDS = ("dot", "scaled_dot", "general", "additive")


def _tensor(name, x, ndims=None):
    check_type(name, x, torch.Tensor, "torch.Tensor")
    if ndims is not None and x.dim() not in ndims:
        want = "或".join(map(str, ndims))
        raise ValueError(f"参数 {name} 应为 {want} 维张量，收到形状 {tuple(x.shape)}")
    return x


def _same(name_a, a, name_b, b, what="最后一维"):
    if a != b:
        raise ValueError(f"参数 {name_a} 与 {name_b} 的{what}应相同，收到 {a} 和 {b}")


def _check_score_args(kind, q, k, weight, w_q, w_k, v):
    """score 的参数检查：各种打分要的张量都在、维数对得上。"""
    check_choice("kind", kind, SCORE_KINDS)
    _tensor("q", q, (1, 2, 3, 4))
    _tensor("k", k, (2, 3, 4))
    if kind in ("dot", "scaled_dot"):
        _same("q", q.size(-1), "k", k.size(-1))
    elif kind == "general":
        _tensor("weight", weight, (2,))
        if tuple(weight.shape) != (q.size(-1), k.size(-1)):
            raise ValueError(f"参数 weight 的形状应为 {(q.size(-1), k.size(-1))}，收到 {tuple(weight.shape)}")
    else:
        for name, p, want in (("w_q", w_q, 2), ("w_k", w_k, 2), ("v", v, 1)):
            _tensor(name, p, (want,))
        _same("w_q", w_q.size(1), "q", q.size(-1), "输入维数")
        _same("w_k", w_k.size(1), "k", k.size(-1), "输入维数")
        _same("w_q", w_q.size(0), "w_k", w_k.size(0), "隐藏维数")
        _same("w_q", w_q.size(0), "v", v.size(0), "隐藏维数")


# ---------- 第 1 步：打分 ----------
def score(q, k, kind="scaled_dot", weight=None, w_q=None, w_k=None, v=None, k_proj=None):
    """query 与 key 的相似度。q (..., Tq, dq)，k (..., Tk, dk) -> 分数 (..., Tq, Tk)。

    dot         qᵀk                              （Luong 等，2015）
    scaled_dot  qᵀk / √d                         （Vaswani 等，2017）
    general     qᵀ W k，weight: (dq, dk)          双线性（Luong 等，2015）
    additive    vᵀ tanh(W_q q + W_k k)           加性 / 拼接式（Bahdanau 等，2015），
                w_q: (h, dq)，w_k: (h, dk)，v: (h,)；等价于 vᵀ tanh(W [q; k])；
                k_proj 是事先算好的 W_k k (..., Tk, h)（解码时每步都一样，不必重算）
    """
    _check_score_args(kind, q, k, weight, w_q, w_k, v)
    if q.dim() == 1:
        q = q.unsqueeze(0)                                   # 单个 query 当作 Tq = 1
    if kind in ("dot", "scaled_dot"):
        s = q @ k.transpose(-2, -1)                          # (..., Tq, Tk)
        return s / math.sqrt(q.size(-1)) if kind == "scaled_dot" else s
    if kind == "general":
        return q @ weight @ k.transpose(-2, -1)              # (..., Tq, Tk)
    hq = (q @ w_q.T).unsqueeze(-2)                           # (..., Tq, 1, h)
    hk = (k @ w_k.T if k_proj is None else k_proj).unsqueeze(-3)  # (..., 1, Tk, h)
    return torch.tanh(hq + hk) @ v                           # (..., Tq, Tk)


class Score(nn.Module):
    """带参数的打分函数：general 的 W、additive 的 W_q、W_k、v 存为可学习参数。"""

    def __init__(self, kind, query_dim, key_dim=None, hidden_dim=None):
        super().__init__()
        self.kind = check_choice("kind", kind, SCORE_KINDS)
        dq = check_int("query_dim", query_dim, minimum=1)
        dk = check_int("key_dim", key_dim if key_dim is not None else dq, minimum=1)
        if kind in ("dot", "scaled_dot") and dq != dk:
            raise ValueError(f"打分函数 {kind} 要求 query_dim 与 key_dim 相同，收到 {dq} 和 {dk}")
        if kind == "general":
            self.weight = nn.Parameter(torch.randn(dq, dk) / math.sqrt(dq))
        elif kind == "additive":
            h = check_int("hidden_dim", hidden_dim if hidden_dim is not None else dk, minimum=1)
            self.w_q = nn.Parameter(torch.randn(h, dq) / math.sqrt(dq))
            self.w_k = nn.Parameter(torch.randn(h, dk) / math.sqrt(dk))
            self.v = nn.Parameter(torch.randn(h) / math.sqrt(h))

    def forward(self, q, k, k_proj=None):
        params = {n: p for n, p in self.named_parameters(recurse=False)}
        return score(q, k, self.kind, k_proj=k_proj, **params)  # (..., Tq, Tk)

    def project_keys(self, k):
        """additive 打分里只与 key 有关的一半 W_k k (..., Tk, h)：算一次，每步解码传给 forward 的 k_proj。"""
        if self.kind != "additive":
            raise ValueError(f"project_keys 只用于 additive 打分，本打分是 {self.kind}")
        return _tensor("k", k, (2, 3, 4)) @ self.w_k.T


# ---------- 第 2 步：归一化 ----------
def _check_softmax_args(scores, mask, temperature):
    _tensor("scores", scores)
    check_number("temperature", temperature, minimum=0, strict=True)
    if mask is None:
        return
    _tensor("mask", mask)
    try:
        torch.broadcast_shapes(mask.shape, scores.shape)
    except RuntimeError:
        raise ValueError(f"参数 mask 的形状 {tuple(mask.shape)} 不能广播到分数的形状 {tuple(scores.shape)}") from None
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"参数 mask 应为布尔或浮点张量，收到 {mask.dtype}")


def masked_softmax(scores, mask=None, temperature=1.0):
    """softmax(scores / temperature)，沿最后一维。

    mask 可广播到 scores：布尔张量 True 处不许看（权重为 0）；浮点张量加到分数上（-inf 即不许看）。
    一整行都不许看时，这一行的权重全为 0（torch.nn.MultiheadAttention 在这里给出 NaN）。
    """
    _check_softmax_args(scores, mask, temperature)
    if temperature != 1.0:
        scores = scores / temperature
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.dtype == torch.bool:
        blocked, scores = mask, scores.masked_fill(mask, float("-inf"))
    else:                                                    # 浮点掩码：加到分数上
        blocked, scores = torch.isneginf(mask), scores + mask
    dead = blocked.all(-1, keepdim=True)                     # 整行都不许看（在小的掩码上判断）
    if not dead.any():
        return torch.softmax(scores, dim=-1)
    weights = torch.softmax(scores.masked_fill(dead, 0.0), dim=-1)
    return weights.masked_fill(dead, 0.0)


# ---------- 三步合一 ----------
def attention(q, k, v, kind="scaled_dot", mask=None, temperature=1.0, **params):
    """通用注意力：打分（kind 与 params 见 score）→ softmax → 加权求和。返回 (输出, 权重)。"""
    _tensor("v", v, (2, 3, 4))
    s = score(q, k, kind, **params)                          # (..., Tq, Tk)
    _same("k", k.size(-2), "v", v.size(-2), "长度（倒数第二维）")
    weights = masked_softmax(s, mask, temperature)           # (..., Tq, Tk)
    return weights @ v, weights                              # (..., Tq, dv)


def _check_qkv(q, k, v):
    for name, x in (("q", q), ("k", k), ("v", v)):
        _tensor(name, x, (2, 3, 4))
    _same("q", q.size(-1), "k", k.size(-1))
    _same("k", k.size(-2), "v", v.size(-2), "长度（倒数第二维）")


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0):
    """softmax(q kᵀ / √d) v。q (..., Tq, d)，k (..., Tk, d)，v (..., Tk, dv)。

    返回 (输出 (..., Tq, dv), 权重 (..., Tq, Tk))；dropout_p > 0 时对权重做 dropout（训练用）。
    """
    _check_qkv(q, k, v)
    scores = (q / math.sqrt(q.size(-1))) @ k.transpose(-2, -1)  # (..., Tq, Tk)  1. 打分
    weights = masked_softmax(scores, mask)                   # (..., Tq, Tk)  2. 归一化
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v, weights                              # (..., Tq, dv)  3. 加权求和


def causal_mask(length, device=None):
    """(T, T) 布尔掩码：位置 i 不许看 j > i（因果 / 解码器自注意力）。"""
    check_int("length", length, minimum=1)
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)


def local_mask(centers, key_length, window):
    """局部注意力的掩码：第 i 个 query 只许看 |j - centers[i]| <= window 的 key。

    centers (..., Tq) -> 布尔掩码 (..., Tq, Tk)，True 处不许看。
    """
    _tensor("centers", centers)
    check_int("key_length", key_length, minimum=1)
    check_int("window", window, minimum=0)
    j = torch.arange(key_length, device=centers.device)      # (Tk,)
    return (j - centers.unsqueeze(-1)).abs() > window        # (..., Tq, Tk)


# ---------- 多头注意力 ----------
class MultiHeadAttention(nn.Module):
    """多头注意力（Vaswani 等，2017），输入批在前 (B, T, E)。

    参数布局与 torch.nn.MultiheadAttention 相同：in_proj_weight 是 W_Q、W_K、W_V 上下叠放的 (3E, E)，
    in_proj_bias (3E,)，out_proj 是 E -> E 的线性层，所以权重可以直接互相载入。
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True):
        super().__init__()
        self.embed_dim = check_int("embed_dim", embed_dim, minimum=1)
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        if embed_dim % num_heads:
            raise ValueError(f"参数 num_heads={num_heads} 应整除 embed_dim={embed_dim}")
        self.head_dim = embed_dim // num_heads
        self.dropout = check_number("dropout", dropout, minimum=0, maximum=1)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)         # 与 torch 相同的初始化
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    @classmethod
    def from_torch(cls, ref):
        """由批在前的 torch.nn.MultiheadAttention 拷贝出一个权重相同的新实例。"""
        check_type("ref", ref, nn.MultiheadAttention, "torch.nn.MultiheadAttention")
        if not ref.batch_first:
            raise ValueError("参数 ref 应为 batch_first=True 的 MultiheadAttention，收到 batch_first=False")
        if not ref._qkv_same_embed_dim or ref.bias_k is not None or ref.add_zero_attn:
            raise ValueError("参数 ref 用了 kdim/vdim、add_bias_kv 或 add_zero_attn，这里不支持")
        new = cls(ref.embed_dim, ref.num_heads, ref.dropout, bias=ref.in_proj_bias is not None)
        new = new.to(device=ref.in_proj_weight.device, dtype=ref.in_proj_weight.dtype)
        new.load_state_dict(ref.state_dict())
        return new

    def forward(self, query, key, value, key_padding_mask=None, attn_mask=None, need_weights=True,
                average_attn_weights=True):
        """query (B, Tq, E)，key / value (B, Tk, E)。

        key_padding_mask (B, Tk)：True 处是填充，不许看；attn_mask (Tq, Tk)、(H, Tq, Tk)（各样本共用）或 (B·H, Tq, Tk)。
        返回 (输出 (B, Tq, E), 权重)：权重默认对各头取平均 (B, Tq, Tk)，
        average_attn_weights=False 时逐头给出 (B, H, Tq, Tk)；need_weights=False 时为 None。
        """
        B, Tq, Tk, H, d = self._check_inputs(query, key, value)
        mask = self._merge_masks(key_padding_mask, attn_mask, B, Tq, Tk, query.dtype)  # (B 或 1, H 或 1, Tq 或 1, Tk)
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
            b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)         # 各 (E, E)
        q = F.linear(query, w_q, b_q).view(B, Tq, H, d).transpose(1, 2)  # (B, H, Tq, d)
        k = F.linear(key, w_k, b_k).view(B, Tk, H, d).transpose(1, 2)    # (B, H, Tk, d)
        v = F.linear(value, w_v, b_v).view(B, Tk, H, d).transpose(1, 2)  # (B, H, Tk, d)
        p = self.dropout if self.training else 0.0
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask, p)  # (B, H, Tq, d), (B, H, Tq, Tk)
        else:                                                # 不要权重时用 torch 的融合实现：同一公式，不存下权重矩阵
            out, weights = _fused_attention(q, k, v, mask, p), None
        out = out.transpose(1, 2).reshape(B, Tq, self.embed_dim)       # 各头拼接 (B, Tq, E)
        out = self.out_proj(out)                                        # (B, Tq, E)
        if not need_weights:
            return out, None
        return out, weights.mean(1) if average_attn_weights else weights

    def _check_inputs(self, query, key, value):
        for name, x in (("query", query), ("key", key), ("value", value)):
            _tensor(name, x)
            if x.dim() != 3:
                raise ValueError(f"参数 {name} 应为 (B, T, E) 的三维张量（批在前），收到形状 {tuple(x.shape)}；"
                                 "单个序列请先 unsqueeze(0)")
            if x.size(-1) != self.embed_dim:
                raise ValueError(f"参数 {name} 的最后一维应为 embed_dim={self.embed_dim}，收到 {x.size(-1)}")
        if not query.size(0) == key.size(0) == value.size(0):
            raise ValueError(f"参数 query、key、value 的批大小应相同，收到 {query.size(0)}、{key.size(0)}、{value.size(0)}")
        _same("key", key.size(1), "value", value.size(1), "长度")
        return query.size(0), query.size(1), key.size(1), self.num_heads, self.head_dim

    def _merge_masks(self, key_padding_mask, attn_mask, B, Tq, Tk, dtype):
        """两种掩码合成一个可广播到 (B, H, Tq, Tk) 的掩码。"""
        masks = []                                            # (名称, 可广播到 (B, H, Tq, Tk) 的掩码)
        if key_padding_mask is not None:
            _tensor("key_padding_mask", key_padding_mask)
            if tuple(key_padding_mask.shape) != (B, Tk):
                raise ValueError(f"参数 key_padding_mask 的形状应为 {(B, Tk)}，收到 {tuple(key_padding_mask.shape)}")
            masks.append(("key_padding_mask", key_padding_mask.reshape(B, 1, 1, Tk)))
        if attn_mask is not None:
            _tensor("attn_mask", attn_mask)
            if tuple(attn_mask.shape) == (Tq, Tk):
                masks.append(("attn_mask", attn_mask.reshape(1, 1, Tq, Tk)))
            elif tuple(attn_mask.shape) == (self.num_heads, Tq, Tk):               # 每个头一张、各样本共用（如 ALiBi）
                masks.append(("attn_mask", attn_mask.reshape(1, self.num_heads, Tq, Tk)))
            elif tuple(attn_mask.shape) == (B * self.num_heads, Tq, Tk):
                masks.append(("attn_mask", attn_mask.reshape(B, self.num_heads, Tq, Tk)))
            else:
                raise ValueError(f"参数 attn_mask 的形状应为 {(Tq, Tk)}、{(self.num_heads, Tq, Tk)} 或 {(B * self.num_heads, Tq, Tk)}，"
                                 f"收到 {tuple(attn_mask.shape)}")
        for name, m in masks:
            if m.dtype != torch.bool and not m.is_floating_point():
                raise TypeError(f"参数 {name} 应为布尔或浮点张量，收到 {m.dtype}")
        masks = [m for _, m in masks]
        if not masks:
            return None
        if all(m.dtype == torch.bool for m in masks):
            return masks[0] if len(masks) == 1 else masks[0] | masks[1]
        as_float = [torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(m, float("-inf"))
                    if m.dtype == torch.bool else m.to(dtype) for m in masks]
        return as_float[0] if len(as_float) == 1 else as_float[0] + as_float[1]


def _fused_attention(q, k, v, mask, dropout_p):
    """torch 的融合注意力。整行都不许看的 query 输出 0（与 masked_softmax 一致；融合实现在这种行上给出 NaN）：
    先让这些行看全部 key，算完再清零，全程不必回到主机上判断有没有这种行。"""
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    blocked = mask if mask.dtype == torch.bool else torch.isneginf(mask)
    dead = blocked.all(-1, keepdim=True)                                 # (B, H 或 1, Tq 或 1, 1)
    if mask.dtype == torch.bool:
        allowed = ~(mask & ~dead)                                        # torch 的布尔掩码 True = 可看
    else:
        allowed = mask.masked_fill(dead, 0.0)
    return F.scaled_dot_product_attention(q, k, v, allowed, dropout_p=dropout_p).masked_fill(dead, 0.0)


# ---------- 注意力池化 ----------
def _positive(**values):
    """核对各个整数参数都 ≥ 1，按原顺序返回。"""
    return tuple(check_int(name, v, minimum=1) for name, v in values.items())


def _check_pool_inputs(x, padding_mask):
    _tensor("x", x, (3,))
    if padding_mask is not None:
        _tensor("padding_mask", padding_mask, (2,))
        if padding_mask.shape != x.shape[:2]:
            raise ValueError(f"参数 padding_mask 的形状应为 {tuple(x.shape[:2])}，收到 {tuple(padding_mask.shape)}")


class AttentionPooling(nn.Module):
    """注意力池化：把序列 (B, T, D) 加权求和成向量，权重由可学习的 query（上下文向量）决定。

    s_t = u_iᵀ tanh(W x_t + b)，a = softmax(s)，输出 Σ_t a_t x_t（Yang 等，2016）。
    num_queries = r > 1 时有 r 组权重，各池化出一个向量再拼接，即 Lin 等（2017）的结构化自注意力。
    """

    def __init__(self, dim, hidden_dim=None, num_queries=1):
        super().__init__()
        hidden_dim = _positive(dim=dim, hidden_dim=dim if hidden_dim is None else hidden_dim, num_queries=num_queries)[1]
        self.proj = nn.Linear(dim, hidden_dim)                        # W, b
        self.query = nn.Parameter(torch.randn(num_queries, hidden_dim) / math.sqrt(hidden_dim))  # (r, h)

    def forward(self, x, padding_mask=None):
        """x (B, T, D)；padding_mask (B, T)，True 处是填充。返回 (池化结果 (B, r·D), 权重 (B, r, T))。"""
        _check_pool_inputs(x, padding_mask)
        keys = torch.tanh(self.proj(x))                               # (B, T, h)
        scores = self.query @ keys.transpose(1, 2)                    # (B, r, T)
        if padding_mask is not None:
            padding_mask = padding_mask.unsqueeze(1)                  # (B, 1, T)
        weights = masked_softmax(scores, padding_mask)                # (B, r, T)
        return (weights @ x).flatten(1), weights                      # (B, r·D), (B, r, T)
