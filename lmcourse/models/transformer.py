"""Transformer（Vaswani 等，2017）：正弦位置编码、编码器层、解码器层、小型编码器—解码器。

编码器层和解码器层与 torch.nn.TransformerEncoderLayer / DecoderLayer（batch_first=True）的
构造参数、forward 参数、参数名都相同；注意力用的是 lmcourse.models.attention.MultiHeadAttention。
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lmcourse._check import Config, check_choice, check_int, check_number, check_type
from lmcourse.models.attention import MultiHeadAttention, causal_mask


def _check_pe_size(max_len, d_model):
    check_int("max_len", max_len, minimum=1)
    check_int("d_model", d_model, minimum=2)
    if d_model % 2:
        raise ValueError(f"参数 d_model 应为偶数（正弦、余弦成对出现），收到 {d_model}")


def sinusoidal_encoding(max_len, d_model, base=10000.0, dtype=None):
    """正弦 / 余弦位置编码，形状 (max_len, d_model)，类型 dtype（默认为 torch 的默认浮点类型）。

    PE(pos, 2i) = sin(pos / base^(2i/d_model))，PE(pos, 2i+1) = cos(pos / base^(2i/d_model))。
    d_model 须为正偶数。
    """
    _check_pe_size(max_len, d_model)
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)        # (L, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)            # (d/2,)
    angle = pos / base ** (two_i / d_model)                             # (L, d/2)
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.to(dtype or torch.get_default_dtype())


# ---------- 编码器层与解码器层 ----------
_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _activation(activation):
    if callable(activation):
        return activation
    return _ACTIVATIONS[check_choice("activation", activation, tuple(_ACTIVATIONS))]


def _layer_args(d_model, nhead, dim_feedforward, dropout, layer_norm_eps, batch_first):
    check_int("d_model", d_model, minimum=1)
    check_int("nhead", nhead, minimum=1)
    check_int("dim_feedforward", dim_feedforward, minimum=1)
    check_number("dropout", dropout, minimum=0, maximum=1)
    check_number("layer_norm_eps", layer_norm_eps, minimum=0, strict=True)
    if batch_first is not True:
        raise ValueError(f"参数 batch_first 只支持 True（输入形状 (B, T, E)），收到 {batch_first!r}")


def _check_seq(name, x, d_model):
    check_type(name, x, torch.Tensor, "torch.Tensor")
    if x.dim() != 3 or x.size(-1) != d_model:
        raise ValueError(f"参数 {name} 应为 (B, T, {d_model}) 的三维张量（批在前），收到形状 {tuple(x.shape)}")


def _check_pair(tgt, memory, d_model):
    _check_seq("tgt", tgt, d_model)
    _check_seq("memory", memory, d_model)
    if tgt.size(0) != memory.size(0):
        raise ValueError(f"参数 tgt 与 memory 的批大小应相同，收到 {tgt.size(0)} 和 {memory.size(0)}")


class TransformerEncoderLayer(nn.Module):
    """编码器层 = 自注意力 + 前馈网络，各带残差连接与层归一化（Vaswani 等，2017）。

    构造参数、forward 参数和参数名都与 torch.nn.TransformerEncoderLayer(batch_first=True) 相同，
    所以 from_torch(ref) 能直接拷贝权重。norm_first=False 是原论文的“后归一化”：x = LN(x + 子层(x))；
    norm_first=True 是“前归一化”：x = x + 子层(LN(x))。
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=True, norm_first=False):
        super().__init__()
        _layer_args(d_model, nhead, dim_feedforward, dropout, layer_norm_eps, batch_first)
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)       # 前馈网络：E -> F
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)       # F -> E
        self.norm_first = bool(norm_first)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = _activation(activation)
        self.batch_first = True

    @classmethod
    def from_torch(cls, ref):
        """由 batch_first=True 的 torch.nn.TransformerEncoderLayer 拷贝出一个权重相同的新实例。"""
        check_type("ref", ref, nn.TransformerEncoderLayer, "torch.nn.TransformerEncoderLayer")
        return _copy_from(cls, ref)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False, need_weights=False):
        """src (B, T, E) -> (B, T, E)。

        src_mask (T, T)：True 处不许看；src_key_padding_mask (B, T)：True 处是填充；
        is_causal=True 且没给 src_mask 时用因果掩码。need_weights=True 时另返回各头的注意力权重 (B, H, T, T)。
        """
        _check_seq("src", src, self.self_attn.embed_dim)
        if is_causal and src_mask is None:
            src_mask = causal_mask(src.size(1), device=src.device)
        x = src                                                          # (B, T, E)
        if self.norm_first:
            a, w = self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, need_weights)
            x = x + a                                                    # 残差：x + 自注意力(LN(x))
            x = x + self._ff_block(self.norm2(x))                        # 残差：x + 前馈(LN(x))
        else:
            a, w = self._sa_block(x, src_mask, src_key_padding_mask, need_weights)
            x = self.norm1(x + a)                                        # LN(x + 自注意力(x))
            x = self.norm2(x + self._ff_block(x))                        # LN(x + 前馈(x))
        return (x, w) if need_weights else x

    def _sa_block(self, x, attn_mask, key_padding_mask, need_weights=True):
        out, w = self.self_attn(x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                                need_weights=need_weights, average_attn_weights=False)  # (B, T, E), (B, H, T, T)
        return self.dropout1(out), w

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))  # (B, T, E)


class TransformerDecoderLayer(nn.Module):
    """解码器层 = 带掩码的自注意力 + 交叉注意力（看编码器的输出 memory）+ 前馈网络，各带残差与层归一化。

    与 torch.nn.TransformerDecoderLayer(batch_first=True) 的构造参数、forward 参数、参数名相同。
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=True, norm_first=False):
        super().__init__()
        _layer_args(d_model, nhead, dim_feedforward, dropout, layer_norm_eps, batch_first)
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout)
        self.multihead_attn = MultiHeadAttention(d_model, nhead, dropout=dropout)  # 交叉注意力
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm_first = bool(norm_first)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = _activation(activation)
        self.batch_first = True

    @classmethod
    def from_torch(cls, ref):
        """由 batch_first=True 的 torch.nn.TransformerDecoderLayer 拷贝出一个权重相同的新实例。"""
        check_type("ref", ref, nn.TransformerDecoderLayer, "torch.nn.TransformerDecoderLayer")
        return _copy_from(cls, ref)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False, need_weights=False):
        """tgt (B, T, E)，memory (B, S, E) -> (B, T, E)。

        tgt_mask (T, T)（通常是因果掩码）、memory_mask (T, S)；两个 key_padding_mask 分别是 (B, T)、(B, S)。
        need_weights=True 时另返回 (自注意力权重 (B, H, T, T), 交叉注意力权重 (B, H, T, S))。
        """
        _check_pair(tgt, memory, self.self_attn.embed_dim)
        if tgt_is_causal and tgt_mask is None:
            tgt_mask = causal_mask(tgt.size(1), device=tgt.device)
        x = tgt                                                          # (B, T, E)
        if self.norm_first:
            a, w_self = self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask)
            x = x + a
            c, w_cross = self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask)
            x = x + c
            x = x + self._ff_block(self.norm3(x))
        else:
            a, w_self = self._sa_block(x, tgt_mask, tgt_key_padding_mask)
            x = self.norm1(x + a)                                        # 带掩码的自注意力
            c, w_cross = self._mha_block(x, memory, memory_mask, memory_key_padding_mask)
            x = self.norm2(x + c)                                        # 交叉注意力：query 来自解码器，key/value 来自 memory
            x = self.norm3(x + self._ff_block(x))                        # 前馈网络
        return (x, (w_self, w_cross)) if need_weights else x

    def _sa_block(self, x, attn_mask, key_padding_mask):
        out, w = self.self_attn(x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                                average_attn_weights=False)              # (B, T, E), (B, H, T, T)
        return self.dropout1(out), w

    def _mha_block(self, x, mem, attn_mask, key_padding_mask):
        out, w = self.multihead_attn(x, mem, mem, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                                     average_attn_weights=False)         # (B, T, E), (B, H, T, S)
        return self.dropout2(out), w

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))  # (B, T, E)


def _copy_from(cls, ref):
    """按 torch 层的超参数建一个新层，载入它的 state_dict（参数名一一对应），并沿用它的训练 / 评估模式。"""
    if not ref.self_attn.batch_first:
        raise ValueError("参数 ref 应为 batch_first=True 的层，收到 batch_first=False")
    act = ref.activation
    if act is F.relu or isinstance(act, nn.ReLU):
        act = "relu"
    elif act is F.gelu or isinstance(act, nn.GELU):
        act = "gelu"
    new = cls(ref.self_attn.embed_dim, ref.self_attn.num_heads, ref.linear1.out_features, ref.dropout.p,
              activation=act, layer_norm_eps=ref.norm1.eps, norm_first=ref.norm_first)
    new = new.to(device=ref.linear1.weight.device, dtype=ref.linear1.weight.dtype)
    new.load_state_dict(ref.state_dict())
    return new.train(ref.training)                                       # 训练 / 评估模式也跟 ref 一致


# ---------- 完整的编码器—解码器 ----------
@dataclass
class Seq2SeqTransformerConfig(Config):
    """小型编码器—解码器 Transformer 的超参数。"""

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 64
    nhead: int = 4
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dim_feedforward: int = 128
    dropout: float = 0.1
    max_len: int = 64              # 位置编码表的长度（最长序列）
    norm_first: bool = True        # 前归一化：深层、短训练时更稳
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self):
        for name in ("src_vocab_size", "tgt_vocab_size", "d_model", "nhead", "num_encoder_layers",
                     "num_decoder_layers", "dim_feedforward", "max_len"):
            check_int(name, getattr(self, name), minimum=1)
        if self.d_model % self.nhead:
            raise ValueError(f"参数 nhead={self.nhead} 应整除 d_model={self.d_model}")
        if self.d_model % 2:
            raise ValueError(f"参数 d_model 应为偶数（正弦位置编码），收到 {self.d_model}")
        check_number("dropout", self.dropout, minimum=0, maximum=1)


class Seq2SeqTransformer(nn.Module):
    """编码器—解码器 Transformer：字向量 × √d + 正弦位置编码 → N 层编码器 / 解码器 → 线性层给出 logits。"""

    def __init__(self, config):
        super().__init__()
        check_type("config", config, Seq2SeqTransformerConfig, "Seq2SeqTransformerConfig")
        self.config = c = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, c.d_model)
        self.register_buffer("pe", sinusoidal_encoding(c.max_len, c.d_model), persistent=False)  # (L, E)
        self.dropout = nn.Dropout(c.dropout)
        args = dict(d_model=c.d_model, nhead=c.nhead, dim_feedforward=c.dim_feedforward, dropout=c.dropout,
                    norm_first=c.norm_first)
        self.encoder = nn.ModuleList(TransformerEncoderLayer(**args) for _ in range(c.num_encoder_layers))
        self.decoder = nn.ModuleList(TransformerDecoderLayer(**args) for _ in range(c.num_decoder_layers))
        # 前归一化时，最后的输出还没归一化过：各补一个 LayerNorm（与 torch.nn.Transformer 一样）
        self.encoder_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.generator = nn.Linear(c.d_model, c.tgt_vocab_size)
        for p in self.parameters():                                      # 与 torch.nn.Transformer 相同的初始化
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def _embed(self, ids, table, name):
        check_type(name, ids, torch.Tensor, "torch.Tensor")
        if ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(f"参数 {name} 应为 (B, T) 的整数（long）张量，收到形状 {tuple(ids.shape)}、类型 {ids.dtype}")
        if ids.size(1) > self.config.max_len:
            raise ValueError(f"参数 {name} 的长度 {ids.size(1)} 超过了 max_len={self.config.max_len}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= table.num_embeddings):
            raise ValueError(f"参数 {name} 中有超出字表 [0, {table.num_embeddings}) 的编号")
        x = table(ids) * math.sqrt(self.config.d_model)                  # (B, T, E)
        return self.dropout(x + self.pe[: ids.size(1)])                  # 加上位置编码

    def encode(self, src, need_weights=False):
        """src (B, S) -> memory (B, S, E)；need_weights=True 时另返回各层的自注意力权重 (B, L, H, S, S)。"""
        pad = src == self.config.pad_id if isinstance(src, torch.Tensor) else None  # (B, S)
        x, ws = self._embed(src, self.src_embed, "src"), []
        for layer in self.encoder:
            x, w = layer(x, src_key_padding_mask=pad, need_weights=True)
            ws.append(w)
        x = self.encoder_norm(x)
        return (x, torch.stack(ws, 1)) if need_weights else x

    def decode(self, tgt_in, memory, src_pad, need_weights=False):
        """tgt_in (B, T)（以 BOS 开头）、memory (B, S, E) -> logits (B, T, V)。

        因果掩码保证第 t 个位置只看得到 tgt_in[:, :t+1]；need_weights=True 时另返回
        (自注意力权重 (B, L, H, T, T), 交叉注意力权重 (B, L, H, T, S))。
        """
        T = tgt_in.size(1) if isinstance(tgt_in, torch.Tensor) else 0
        x = self._embed(tgt_in, self.tgt_embed, "tgt_in")                # (B, T, E)
        mask = causal_mask(T, device=x.device)                           # (T, T)
        tgt_pad = tgt_in == self.config.pad_id                           # (B, T)
        w_self, w_cross = [], []
        for layer in self.decoder:
            x, (ws, wc) = layer(x, memory, tgt_mask=mask, tgt_key_padding_mask=tgt_pad,
                                memory_key_padding_mask=src_pad, need_weights=True)
            w_self.append(ws)
            w_cross.append(wc)
        logits = self.generator(self.decoder_norm(x))                    # (B, T, V)
        return (logits, torch.stack(w_self, 1), torch.stack(w_cross, 1)) if need_weights else logits

    def forward(self, src, tgt_in):
        """教师强制：一次算出所有位置的 logits。src (B, S)，tgt_in (B, T) -> (B, T, V)。"""
        memory = self.encode(src)
        return self.decode(tgt_in, memory, src == self.config.pad_id)

    # ---------- 解码：与第 4 章共用 seq2seq.greedy_decode / beam_search ----------
    def start(self, src, src_lengths=None):
        """解码开始：(memory (B, S, E), 状态 = 已生成的前缀 (B, 0), 源的 pad 掩码 (B, S))。编码器只跑一次。"""
        memory = self.encode(src)
        return memory, torch.zeros(src.size(0), 0, dtype=torch.long, device=src.device), src == self.config.pad_id

    def decode_step(self, y_prev, prefix, memory, src_pad):
        """把上一个字接到前缀后面、整段重新过一遍解码器（因果掩码下前面的位置不变），取最后一个位置。

        返回 (logits (B, V), 新前缀 (B, t+1), 最后一层交叉注意力在各头上的平均 (B, S))。
        """
        prefix = torch.cat([prefix, y_prev.unsqueeze(1)], 1)                      # (B, t+1)
        logits, _, cross = self.decode(prefix, memory, src_pad, need_weights=True)  # cross (B, L, H, t+1, S)
        return logits[:, -1], prefix, cross[:, -1, :, -1].mean(1)

    @staticmethod
    def reorder(prefix, index):
        """束搜索挑出、复制假设：前缀的批次在第 0 维。"""
        return prefix[index]

    def greedy_decode(self, src, max_len=None):
        """贪心解码（seq2seq.greedy_decode）：src (B, S) -> 每句的编号列表（不含 BOS、EOS）。"""
        from lmcourse.models.seq2seq import greedy_decode

        c = self.config
        max_len = check_int("max_len", max_len if max_len is not None else c.max_len - 1, minimum=1,
                            maximum=c.max_len - 1)
        return greedy_decode(self, src, (src != c.pad_id).sum(1), max_len)[0]

    def attention_weights(self, src, tgt_in):
        """一个批次在教师强制下的全部注意力权重，字典：encoder (B, L, H, S, S)、
        decoder (B, L, H, T, T)、cross (B, L, H, T, S)。"""
        with torch.no_grad():
            memory, w_enc = self.encode(src, need_weights=True)
            _, w_dec, w_cross = self.decode(tgt_in, memory, src == self.config.pad_id, need_weights=True)
        return {"encoder": w_enc, "decoder": w_dec, "cross": w_cross}


def shift_matrix(k, d_model, base=10000.0, dtype=None):
    """相对位置的性质：PE(pos + k) = M_k · PE(pos)，M_k 是 (d_model, d_model) 的分块旋转矩阵。

    第 i 块作用在 (sin, cos) 这一对维度上：[[cos kω_i, sin kω_i], [-sin kω_i, cos kω_i]]，ω_i = 1 / base^(2i/d_model)。
    M_k 只与距离 k 有关，与 pos 无关。
    """
    check_int("k", k)
    check_int("d_model", d_model, minimum=2)
    if d_model % 2:
        raise ValueError(f"参数 d_model 应为偶数，收到 {d_model}")
    omega = 1.0 / base ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    c, s = torch.cos(k * omega), torch.sin(k * omega)
    blocks = torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)      # (d/2, 2, 2)
    return torch.block_diag(*blocks).to(dtype or torch.get_default_dtype())           # (d, d)
