"""XLNet（Yang 等，2019）：用“排列语言模型”做双向预训练，骨架是 Transformer-XL 的相对位置注意力。

随机取一个分解顺序（factorisation order），按这个顺序从左到右预测：每个 token 只看得见顺序里排在它前面的 token。
句子本身的位置不动，只是用 perm_mask 挡住“顺序里在后面的”位置，所以期望上每个 token 都用到了两边的上文。
位置不用绝对位置向量，而是在注意力打分里加上“相对距离”的项（r、r_r_bias），外加“是否同一段”的项（seg_embed、r_s_bias）。
mems 把上一段各层的输入缓存下来，新一段的每个位置都看得见它们（Transformer-XL 的段级循环）。
参数名与 Hugging Face 的 XLNetModel 一一对应，from_hf 可以直接拷权重；这里的张量一律 batch 在前。
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse import ckpt
from lmcourse._check import Config, check_choice, check_int, check_number, check_type
from lmcourse.masking import permutation_masks  # noqa: F401  排列掩码放在 masking.py，这里再导出一次
from lmcourse.models.bert import init_weights

ACTIVATIONS = ("gelu", "relu")   # gelu：精确的 erf 形式（HF 的 "gelu"）


# 预训练命令的尺寸（--preset）；small 与小 BERT 同宽同深
SIZES = {"tiny": dict(d_model=64, n_layer=2, n_head=2, d_head=32, d_inner=256),
         "small": dict(d_model=128, n_layer=4, n_head=4, d_head=32, d_inner=512),
         "medium": dict(d_model=256, n_layer=4, n_head=4, d_head=64, d_inner=1024),
         "base": dict(d_model=768, n_layer=12, n_head=12, d_head=64, d_inner=3072)}


@dataclass
class XLNetConfig(Config):
    vocab_size: int = 32000        # 默认值即 XLNet-base
    d_model: int = 768             # C
    n_layer: int = 12
    n_head: int = 12               # nh
    d_head: int = 64               # d；HF 要求 nh·d = C，这里不强求（原版 XLNet 也不要求）
    d_inner: int = 3072            # 前馈网络的中间宽度
    ff_activation: str = "gelu"
    dropout: float = 0.1           # 嵌入、位置编码、注意力权重、各子层输出共用一个比例
    layer_norm_eps: float = 1e-12
    mem_len: int = None            # 缓存多少个位置的 mems；None：不返回 mems
    reuse_len: int = None          # 只把本段的前 reuse_len 个位置存进 mems；None：全部
    clamp_len: int = -1            # 相对距离截断到 [-clamp_len, clamp_len]；≤ 0：不截断
    untie_r: bool = True           # False：r_w_bias、r_r_bias、r_s_bias 各层共用一份（HF 总是各层一份）

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layer", "n_head", "d_head", "d_inner"):
            check_int(f"config.{name}", getattr(self, name), minimum=1)
        check_choice("config.ff_activation", self.ff_activation, ACTIVATIONS)
        check_number("config.dropout", self.dropout, minimum=0)
        if self.dropout >= 1:
            raise ValueError(f"参数 config.dropout 应小于 1，收到 {self.dropout}")
        check_number("config.layer_norm_eps", self.layer_norm_eps, minimum=0, strict=True)
        for name in ("mem_len", "reuse_len"):
            if getattr(self, name) is not None:
                check_int(f"config.{name}", getattr(self, name), minimum=1)
        check_int("config.clamp_len", self.clamp_len)
        check_type("config.untie_r", self.untie_r, bool, "布尔值")

    @classmethod
    def base(cls, vocab_size=32000, **kw):
        """XLNet-base：C=768，12 层，12 个头，每头 64 维，前馈 3072，dropout 0.1。"""
        return cls(**dict(dict(vocab_size=vocab_size, d_model=768, n_layer=12, n_head=12, d_head=64,
                               d_inner=3072, dropout=0.1), **kw))


def count_parameters(config):
    """按公式数 XLNetModel 的参数，不必真的建模型。"""
    check_type("config", config, XLNetConfig, "XLNetConfig")
    C, H, Di = config.d_model, config.n_head * config.d_head, config.d_inner
    biases = 3 * H                                           # r_w_bias、r_r_bias、r_s_bias，各 (nh, d)
    attention = 5 * C * H + 2 * H + 2 * C                    # q、k、v、o、r + seg_embed (2, nh, d) + layer_norm
    ff = (C * Di + Di) + (Di * C + C) + 2 * C                # layer_1、layer_2 + layer_norm
    shared = 0 if config.untie_r else biases                 # 共用时只数一份
    per_layer = attention + ff + (biases if config.untie_r else 0)
    return config.vocab_size * C + C + config.n_layer * per_layer + shared   # word_embedding + mask_emb + 各层


class XLNetRelativeAttention(nn.Module):
    """相对位置多头注意力，同时算内容流和查询流；之后做残差连接和 LayerNorm（后归一化）。

    为什么要两个流：按分解顺序预测位置 t 时，模型必须知道“要预测的是第 t 个位置”，却不能看见 t 上的 token 本身，
    否则预测就成了抄答案。于是查询流 g 只带位置（起点是同一个 mask_emb，位置信息来自相对位置项），不带内容；
    而内容流 h 要看见 token 本身，因为顺序里排在 t 后面的位置需要 t 的内容作上文。两个流共用全部参数，
    键和值都来自内容流（和 mems），只是查询不同、掩码不同（内容流多看见自己）。
    """

    def __init__(self, config, biases=None):
        super().__init__()
        C, nh, d = config.d_model, config.n_head, config.d_head
        self.scale = d ** -0.5
        for name in ("q", "k", "v", "o", "r"):                                 # 各 (C, nh, d)
            setattr(self, name, nn.Parameter(torch.empty(C, nh, d)))
        for name in ("r_r_bias", "r_s_bias", "r_w_bias"):                     # 各 (nh, d)；untie_r=False 时各层共用
            setattr(self, name, biases[name] if biases else nn.Parameter(torch.empty(nh, d)))
        self.seg_embed = nn.Parameter(torch.empty(2, nh, d))                  # 0：同一段，1：不同段
        self.layer_norm = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, h, g, mask_h, mask_g, r, seg, mem=None, target_mapping=None):
        """h (B, T, C) 内容流；g (B, P, C) 查询流或 None；r (R, C) 相对位置编码，R = K + T；
        mask_* (B, T, K) 或 None，True = 看不见；seg (B, T, K) 布尔（True = 不同段）或 None；mem (B, M, C) 或 None。"""
        cat = h if mem is None else torch.cat([mem, h], 1)                     # (B, K, C)，K = M + T
        k = torch.einsum("bkc,cnd->bnkd", cat, self.k)                          # (B, nh, K, d)
        v = torch.einsum("bkc,cnd->bnkd", cat, self.v)                          # (B, nh, K, d)
        kr = torch.einsum("rc,cnd->nrd", r, self.r)                             # (nh, R, d)
        q = torch.einsum("btc,cnd->bntd", h, self.q)                            # (B, nh, T, d)
        out_h = self.post_attention(h, self.rel_attn_core(q, k, v, kr, seg, mask_h))      # (B, T, C)
        if g is None:
            return out_h, None
        q = torch.einsum("bpc,cnd->bnpd", g, self.q)                            # (B, nh, P, d)
        q = torch.einsum("bnpd,bpt->bntd", q, target_mapping)                   # 放到各自要预测的位置上 (B, nh, T, d)
        a = self.rel_attn_core(q, k, v, kr, seg, mask_g)                         # (B, nh, T, d)
        a = torch.einsum("bntd,bpt->bnpd", a, target_mapping)                   # 取回 P 个预测位置 (B, nh, P, d)
        return out_h, self.post_attention(g, a)                                 # (B, P, C)

    def rel_attn_core(self, q, k, v, kr, seg=None, mask=None):
        """两个流共用的注意力核心。q (B, nh, T, d)，k、v (B, nh, K, d)，kr (nh, R, d)。返回 (B, nh, T, d)。

        打分 = 内容项 (q + r_w_bias)·k + 位置项 (q + r_r_bias)·r_{i-j} + 段项 (q + r_s_bias)·seg_embed[同段与否]，
        再乘 1/√d。查询 i 的绝对位置是 M + i，键 j 的是 j，相对距离 M + i - j。
        """
        B, nh, T, _ = q.shape
        K = k.size(2)
        ac = (q + self.r_w_bias[:, None]) @ k.transpose(-2, -1)                # (B, nh, T, K)
        bd = (q + self.r_r_bias[:, None]) @ kr.transpose(-2, -1)               # (B, nh, T, R)：第 p 列是距离 K - p
        bd = self.rel_shift(bd, K)                                              # (B, nh, T, K)
        score = ac + bd
        if seg is not None:
            ef = torch.einsum("bnid,snd->bnis", q + self.r_s_bias[:, None], self.seg_embed)   # (B, nh, T, 2)
            score = score + torch.where(seg[:, None], ef[..., 1:], ef[..., :1])              # (B, nh, T, K)
        score = score * self.scale
        if mask is not None:                                    # 与 HF 一样减去一个大数（而非填 -inf）：
            big = 65500.0 if score.dtype == torch.float16 else 1e30   # 整行都看不见时得到均匀分布，不会是 NaN
            score = score - big * mask[:, None].to(score.dtype)
        w = self.dropout(score.softmax(-1))                                     # (B, nh, T, K)
        return w @ v                                                            # (B, nh, T, d)

    @staticmethod
    def rel_shift(bd, K):
        """(B, nh, T, R) -> (B, nh, T, K)：为每对 (i, j) 取出距离 M + i - j 那一列，即第 T - i + j 列。

        与 HF 的 rel_shift_bnij（reshape 错位再切片）取出的元素完全相同，这里写成显式的 gather。"""
        T = bd.size(2)
        i = torch.arange(T, device=bd.device)[:, None]
        j = torch.arange(K, device=bd.device)[None, :]
        idx = (T - i + j).expand(*bd.shape[:2], T, K)                         # (B, nh, T, K)，取值在 1..R-1
        return bd.gather(-1, idx)

    def post_attention(self, x, a):
        """各头拼回并投影到 C，再加残差、LayerNorm。a (B, nh, N, d)，x (B, N, C)。"""
        out = torch.einsum("bnid,cnd->bic", a, self.o)                          # (B, N, C)
        return self.layer_norm(self.dropout(out) + x)


class XLNetFeedForward(nn.Module):
    """逐位置的前馈网络 C -> d_inner -> C，残差相加后 LayerNorm。"""

    def __init__(self, config):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.layer_1 = nn.Linear(config.d_model, config.d_inner)
        self.layer_2 = nn.Linear(config.d_inner, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.act = F.gelu if config.ff_activation == "gelu" else F.relu

    def forward(self, x):
        y = self.dropout(self.layer_2(self.dropout(self.act(self.layer_1(x)))))
        return self.layer_norm(y + x)                                           # (B, N, C)


class XLNetLayer(nn.Module):
    """一层：相对位置注意力（两个流）+ 前馈网络（两个流各过一次，参数相同）。"""

    def __init__(self, config, biases=None):
        super().__init__()
        self.rel_attn = XLNetRelativeAttention(config, biases)
        self.ff = XLNetFeedForward(config)

    def forward(self, h, g, mask_h, mask_g, r, seg, mem=None, target_mapping=None):
        h, g = self.rel_attn(h, g, mask_h, mask_g, r, seg, mem, target_mapping)
        return self.ff(h), (None if g is None else self.ff(g))


class XLNetModel(nn.Module):
    """XLNet 的主体（不含输出层）。forward 的参数与 HF 的 XLNetModel 同义，但张量一律 batch 在前。"""

    def __init__(self, config):
        super().__init__()
        check_type("config", config, XLNetConfig, "XLNetConfig")
        self.config = config
        self.word_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.mask_emb = nn.Parameter(torch.empty(1, 1, config.d_model))       # 查询流的起点：只有位置、没有内容
        shared = None
        if not config.untie_r:
            shared = {n: nn.Parameter(torch.empty(config.n_head, config.d_head))
                      for n in ("r_r_bias", "r_s_bias", "r_w_bias")}
        self.layer = nn.ModuleList(XLNetLayer(config, shared) for _ in range(config.n_layer))
        self.dropout = nn.Dropout(config.dropout)
        self.apply(_init_weights)
        nn.init.normal_(self.mask_emb, std=0.02)

    def relative_positional_encoding(self, qlen, klen, device=None):
        """相对距离 klen, klen-1, ..., -qlen+1 的正弦编码 (qlen + klen, C)，前一半 sin、后一半 cos。

        与 HF 一样在 float32 里算（这样 float64 的模型也与 HF 逐位相同），用的时候再转成模型的 dtype。"""
        C = self.config.d_model
        inv_freq = 1 / torch.pow(10000, torch.arange(0, C, 2, device=device).float() / C)    # (C/2,)
        pos = torch.arange(klen, -qlen, -1, device=device).float()                          # (R,)
        if self.config.clamp_len > 0:
            pos = pos.clamp(-self.config.clamp_len, self.config.clamp_len)
        x = pos[:, None] * inv_freq                                                          # (R, C/2)
        return torch.cat([x.sin(), x.cos()], -1)                                             # (R, C)

    def forward(self, input_ids, token_type_ids=None, perm_mask=None, target_mapping=None, mems=None,
                attention_mask=None):
        """input_ids (B, T)。返回 (输出, 新的 mems)。

        token_type_ids (B, T)：段号，只比较“是否同一段”；mems 算作第 0 段。
        perm_mask (B, T, T)：perm_mask[b, i, j] = 1 表示 i 看不见 j（内容流总能看见自己），见 permutation_masks。
        target_mapping (B, P, T)：target_mapping[b, k, j] = 1 表示第 k 个预测对象在位置 j；给了它才算查询流。
        mems：上次返回的 mems，每层一个 (B, M, C)；全部 M 个缓存位置都看得见。
        attention_mask (B, T)：1 为真 token，0 为补齐（谁都看不见补齐的位置，补齐位置的内容流只看见自己）。
        输出：内容流 (B, T, C)；给了 target_mapping 时是查询流 (B, P, C)。
        新的 mems：config.mem_len 不为 None 时，每层输入的最后 mem_len 个位置 [(B, ≤mem_len, C)]，否则 None。
        """
        B, T = self._check_inputs(input_ids, token_type_ids, perm_mask, target_mapping, mems, attention_mask)
        M = mems[0].size(1) if mems else 0
        K = M + T
        dev, dtype = input_ids.device, self.word_embedding.weight.dtype

        mask_g = None                                           # (B, T, K)，True = 看不见；查询流用
        if attention_mask is not None:
            mask_g = (attention_mask == 0)[:, None, :].expand(B, T, T)
        if perm_mask is not None:
            mask_g = perm_mask > 0 if mask_g is None else mask_g | (perm_mask > 0)
        mask_h = None                                           # 内容流：再看见自己
        if mask_g is not None:
            mask_g = torch.cat([mask_g.new_zeros(B, T, M), mask_g], 2)           # mems 都看得见
            itself = torch.zeros(T, K, dtype=torch.bool, device=dev)
            itself[:, M:] = torch.eye(T, dtype=torch.bool, device=dev)
            mask_h = mask_g & ~itself

        seg = None                                              # (B, T, K)，True = 不同段
        if token_type_ids is not None:
            cat_ids = torch.cat([token_type_ids.new_zeros(B, M), token_type_ids], 1)         # (B, K)
            seg = token_type_ids[:, :, None] != cat_ids[:, None, :]

        h = self.dropout(self.word_embedding(input_ids))                         # (B, T, C)
        g = None
        if target_mapping is not None:
            target_mapping = target_mapping.to(dtype)
            g = self.dropout(self.mask_emb.expand(B, target_mapping.size(1), -1))  # (B, P, C)
        r = self.dropout(self.relative_positional_encoding(T, K, dev).to(dtype))   # (R, C)

        new_mems = [] if self.config.mem_len is not None else None
        for i, layer in enumerate(self.layer):
            if new_mems is not None:
                new_mems.append(self._cache_mem(h, mems[i] if mems else None))   # 存的是每层的输入
            h, g = layer(h, g, mask_h, mask_g, r, seg, mems[i] if mems else None, target_mapping)
        return self.dropout(h if g is None else g), new_mems

    def _cache_mem(self, h, prev):
        """把本段（前 reuse_len 个位置）接在旧 mems 后面，留最后 mem_len 个；不回传梯度。"""
        if self.config.reuse_len is not None:
            h = h[:, :self.config.reuse_len]
        new = h if prev is None else torch.cat([prev, h], 1)
        return new[:, -self.config.mem_len:].detach()                            # (B, ≤mem_len, C)

    def _check_inputs(self, input_ids, token_type_ids, perm_mask, target_mapping, mems, attention_mask):
        check_type("input_ids", input_ids, torch.Tensor, "torch.LongTensor")
        if input_ids.dtype not in (torch.long, torch.int):
            raise TypeError(f"参数 input_ids 应为整数张量（torch.long），收到 dtype {input_ids.dtype}")
        if input_ids.dim() != 2 or input_ids.size(1) == 0:
            raise ValueError(f"参数 input_ids 应为 (B, T) 的二维张量且 T ≥ 1，收到形状 {tuple(input_ids.shape)}")
        B, T = input_ids.shape
        for name, x, shape in (("token_type_ids", token_type_ids, (B, T)), ("perm_mask", perm_mask, (B, T, T)),
                               ("attention_mask", attention_mask, (B, T))):
            if x is not None:
                check_type(name, x, torch.Tensor, "torch.Tensor")
                if x.shape != shape:
                    raise ValueError(f"参数 {name} 的形状应为 {shape}，收到 {tuple(x.shape)}")
        if token_type_ids is not None and token_type_ids.dtype not in (torch.long, torch.int):
            raise TypeError(f"参数 token_type_ids 应为整数张量，收到 dtype {token_type_ids.dtype}")
        if target_mapping is not None:
            check_type("target_mapping", target_mapping, torch.Tensor, "torch.Tensor")
            if target_mapping.dim() != 3 or target_mapping.shape[::2] != (B, T) or target_mapping.size(1) == 0:
                raise ValueError(f"参数 target_mapping 的形状应为 ({B}, P, {T})，收到 {tuple(target_mapping.shape)}")
        if mems is not None:
            check_type("mems", mems, (list, tuple), "list")
            C = self.config.d_model
            if len(mems) != self.config.n_layer:
                raise ValueError(f"参数 mems 应有 {self.config.n_layer} 层，收到 {len(mems)} 层")
            shapes = {tuple(m.shape) if isinstance(m, torch.Tensor) else None for m in mems}
            if len(shapes) != 1 or None in shapes or len(next(iter(shapes))) != 3 \
                    or next(iter(shapes))[::2] != (B, C):
                raise ValueError(f"参数 mems 每层应为形状相同的 ({B}, M, {C})，收到 {sorted(map(str, shapes))}")
        return B, T

    @classmethod
    def from_hf(cls, ref):
        """由 Hugging Face 的 transformers.XLNetModel 拷贝出一个权重相同的新实例（同 dtype，eval 模式）。"""
        if type(ref).__name__ != "XLNetModel" or not hasattr(ref, "word_embedding"):
            raise TypeError(f"参数 ref 应为 transformers.XLNetModel，收到 {type(ref).__name__}")
        c = ref.config
        if c.attn_type != "bi" or c.bi_data:
            raise ValueError(f"参数 ref 应为 attn_type='bi'、bi_data=False，收到 {c.attn_type!r}、{c.bi_data}")
        if c.ff_activation not in ACTIVATIONS:
            raise ValueError(f"参数 ref 的 ff_activation 应为 {'、'.join(ACTIVATIONS)} 之一，收到 {c.ff_activation!r}")
        config = XLNetConfig(vocab_size=c.vocab_size, d_model=c.d_model, n_layer=c.n_layer, n_head=c.n_head,
                             d_head=c.d_head, d_inner=c.d_inner, ff_activation=c.ff_activation, dropout=c.dropout,
                             layer_norm_eps=c.layer_norm_eps, mem_len=c.mem_len or None,
                             reuse_len=c.reuse_len or None, clamp_len=c.clamp_len, untie_r=True)
        new = cls(config).to(ref.word_embedding.weight.dtype)
        new.load_state_dict(ref.state_dict())                   # 参数名完全相同
        return new.eval()


class XLNetLMHeadModel(nn.Module):
    """XLNet + 输出层 lm_loss（权重与词嵌入共用，另有偏置）：排列语言模型的预训练模型，与 HF 的 XLNetLMHeadModel 同名同义。"""

    def __init__(self, config):
        super().__init__()
        self.transformer = XLNetModel(config)
        self.lm_loss = nn.Linear(config.d_model, config.vocab_size)
        self.lm_loss.weight = self.transformer.word_embedding.weight             # 与词嵌入共用
        nn.init.zeros_(self.lm_loss.bias)

    @property
    def config(self):
        return self.transformer.config

    def forward(self, input_ids, token_type_ids=None, perm_mask=None, target_mapping=None, mems=None,
                attention_mask=None):
        """参数同 XLNetModel.forward。返回 (打分, 新的 mems)：给了 target_mapping 时打分 (B, P, V)，否则 (B, T, V)。"""
        out, new_mems = self.transformer(input_ids, token_type_ids, perm_mask, target_mapping, mems, attention_mask)
        return self.lm_loss(out), new_mems

    @classmethod
    def from_hf(cls, ref):
        """由 transformers.XLNetLMHeadModel 拷贝出权重相同的新实例（同 dtype，eval 模式）。"""
        if type(ref).__name__ != "XLNetLMHeadModel":
            raise TypeError(f"参数 ref 应为 transformers.XLNetLMHeadModel，收到 {type(ref).__name__}")
        body = XLNetModel.from_hf(ref.transformer)
        new = cls(body.config).to(ref.lm_loss.weight.dtype)
        new.load_state_dict(ref.state_dict())
        return new.eval()


class XLNetClassifier(nn.Module):
    """微调用的分类模型：只用内容流（不给 perm_mask，所有位置互相看得见），按 attention_mask 做平均池化，再接线性层。

    forward 的参数与 BERT 的分类器相同（token_type_ids 不用），方便共用 lmcourse.finetune 的微调与评估。
    """

    def __init__(self, model, num_labels=2, dropout=0.1):
        super().__init__()
        check_type("model", model, XLNetModel, "XLNetModel")
        self.transformer = model
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(model.config.d_model, num_labels)
        init_weights(self.classifier)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        """input_ids (B, T)；attention_mask (B, T)，真 token 为 1。返回分类打分 (B, num_labels)。"""
        h, _ = self.transformer(input_ids, attention_mask=attention_mask)       # (B, T, C)
        w = torch.ones_like(input_ids, dtype=h.dtype) if attention_mask is None else attention_mask.to(h.dtype)
        mean = (h * w[..., None]).sum(1) / w.sum(1, keepdim=True)               # (B, C)
        return self.classifier(self.drop(mean))


def from_checkpoint(name="xlnet_news"):
    """读随包分发的 XLNet 检查点，返回 (XLNetLMHeadModel（eval 模式）, 说明)。"""
    return ckpt.load(name, lambda meta: XLNetLMHeadModel(XLNetConfig.from_dict(meta["config"])))


def _init_weights(module):
    """与 BERT 相同的初始化（bert.init_weights），再让相对注意力直接持有的各个参数 ~ N(0, 0.02²)（与 HF 相同）。"""
    if isinstance(module, XLNetRelativeAttention):
        for p in module.parameters(recurse=False):
            nn.init.normal_(p, std=0.02)
    else:
        init_weights(module)
