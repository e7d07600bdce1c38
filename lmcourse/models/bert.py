"""BERT（Devlin 等，2019）：Transformer 编码器 + 掩码语言模型（MLM）与下一句预测（NSP）两个预训练任务。

输入 = 字向量 + 段向量（句子 A / B）+ 位置向量（学出来的，不是正弦），相加后过 LayerNorm；
编码器的每一层就是第 5 章的 TransformerEncoderLayer（后归一化，激活函数 GELU）；
[CLS] 位置的输出再过一层 tanh 全连接，得到"池化输出"，供 NSP 和句子分类用。
参数与 Hugging Face 的 BertModel 一一对应（只是注意力的 Q、K、V 叠成了一个矩阵），但名字只有嵌入层相同：
编码器层沿用第 5 章 TransformerEncoderLayer（也就是 torch）的名字，from_hf 按一张改名表拷权重。
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse import ckpt
from lmcourse._check import Config, check_choice, check_int, check_type
from lmcourse.models.attention import MultiHeadAttention
from lmcourse.models.transformer import TransformerEncoderLayer

POOLINGS = ("cls", "mean", "max", "mean_max")


# 预训练命令的尺寸（--preset）；small 即本课程在 CPU 上预训练的小 BERT
SIZES = {"tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256),
         "small": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512),
         "medium": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
         "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)}


@dataclass
class BertConfig(Config):
    vocab_size: int = 21128            # BERT-Chinese 的字表大小
    hidden_size: int = 768             # H
    num_hidden_layers: int = 12        # L
    num_attention_heads: int = 12      # A
    intermediate_size: int = 3072      # 前馈网络的中间维数，4H
    max_position_embeddings: int = 512
    type_vocab_size: int = 2           # 句子 A / B
    hidden_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    norm_first: bool = False           # True：前归一化（pre-LN，GPT-2 的做法）
    alibi: bool = False                # True：注意力分数减去 m_h·|i-j|（ALiBi），一开始就偏向近处的字

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            check_int(f"config.{name}", getattr(self, name), minimum=1)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"参数 config.num_attention_heads={self.num_attention_heads} 应整除 "
                             f"hidden_size={self.hidden_size}")

    @classmethod
    def base(cls, vocab_size=30522, **kw):
        """BERT-base：L=12，H=768，A=12（论文约 110M 参数，英文字表 30522）。"""
        return cls(vocab_size=vocab_size, **kw)

    @classmethod
    def large(cls, vocab_size=30522, **kw):
        """BERT-large：L=24，H=1024，A=16（论文约 340M 参数）。"""
        return cls(vocab_size=vocab_size, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                   intermediate_size=4096, **kw)

    @classmethod
    def small(cls, vocab_size, **kw):
        """本课程在 CPU 上预训练的小 BERT：L=4，H=128，A=4，最长 128 个 token。"""
        kw = dict(dict(SIZES["small"], max_position_embeddings=128), **kw)
        return cls(vocab_size=vocab_size, **kw)


def count_parameters(config):
    """按公式数 BertModel 的参数（含池化层），不必真的建模型。"""
    H, I, V = config.hidden_size, config.intermediate_size, config.vocab_size
    embeddings = (V + config.max_position_embeddings + config.type_vocab_size) * H + 2 * H  # 三张表 + LayerNorm
    attention = 4 * (H * H + H) + 2 * H                                # Q、K、V、输出投影 + LayerNorm
    ffn = (H * I + I) + (I * H + H) + 2 * H                            # 两个全连接 + LayerNorm
    pooler = H * H + H
    return embeddings + config.num_hidden_layers * (attention + ffn) + pooler


class BertEmbeddings(nn.Module):
    """输入表示 = 字向量 + 段向量 + 位置向量，再 LayerNorm、dropout。"""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids):
        T = input_ids.size(1)
        pos = torch.arange(T, device=input_ids.device)                                  # (T,)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids) \
            + self.position_embeddings(pos)                                             # (B, T, H)
        return self.dropout(self.LayerNorm(x))


def _check_input_ids(input_ids, max_len):
    check_type("input_ids", input_ids, torch.Tensor, "torch.LongTensor")
    if input_ids.dim() != 2:
        raise ValueError(f"参数 input_ids 应为 (B, T) 的二维张量，收到形状 {tuple(input_ids.shape)}")
    if input_ids.size(1) > max_len:
        raise ValueError(f"参数 input_ids 的长度 {input_ids.size(1)} 超过 max_position_embeddings={max_len}")


class BertModel(nn.Module):
    """BERT 主体。forward 返回 (sequence_output (B, T, H), pooled_output (B, H))。"""

    def __init__(self, config):
        super().__init__()
        check_type("config", config, BertConfig, "BertConfig")
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(config.hidden_size, config.num_attention_heads, config.intermediate_size,
                                    config.hidden_dropout_prob, activation="gelu", layer_norm_eps=config.layer_norm_eps,
                                    norm_first=config.norm_first)
            for _ in range(config.num_hidden_layers))
        if config.norm_first:                            # 前归一化时最后一层的输出还要再过一次 LayerNorm
            self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.apply(lambda m: init_weights(m, config.initializer_range))

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, need_weights=False):
        """input_ids (B, T)；token_type_ids (B, T)，0 = 句子 A，1 = 句子 B；attention_mask (B, T)，1 = 真实 token，0 = 填充。

        need_weights=True 时另返回每层各头的注意力权重列表 [(B, A, T, T)]。
        """
        _check_input_ids(input_ids, self.config.max_position_embeddings)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        pad = None if attention_mask is None else attention_mask == 0                  # (B, T)，True = 填充
        x = self.embeddings(input_ids, token_type_ids)                                  # (B, T, H)
        bias = alibi_bias(input_ids.size(1), self.config.num_attention_heads, x.device).to(x.dtype) \
            if self.config.alibi else None                                              # (A, T, T)，各样本共用
        weights = []
        for layer in self.layers:
            if need_weights:
                x, w = layer(x, bias, pad, need_weights=True)                          # (B, T, H), (B, A, T, T)
                weights.append(w)
            else:
                x = layer(x, bias, pad)                                                 # 不要权重时走融合注意力
        if self.config.norm_first:
            x = self.final_norm(x)                                                      # (B, T, H)
        pooled = torch.tanh(self.pooler(x[:, 0]))                                       # [CLS] -> (B, H)
        return (x, pooled, weights) if need_weights else (x, pooled)

    @classmethod
    def from_hf(cls, ref):
        """由 Hugging Face 的 transformers.BertModel 拷贝出一个权重相同的新实例。"""
        if type(ref).__name__ != "BertModel" or not hasattr(ref, "embeddings"):
            raise TypeError(f"参数 ref 应为 transformers.BertModel，收到 {type(ref).__name__}")
        c = ref.config
        if getattr(c, "hidden_act", "gelu") != "gelu":
            raise ValueError(f"参数 ref 的激活函数应为 gelu，收到 {c.hidden_act!r}")
        config = BertConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
                            num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
                            max_position_embeddings=c.max_position_embeddings, type_vocab_size=c.type_vocab_size,
                            hidden_dropout_prob=c.hidden_dropout_prob, layer_norm_eps=c.layer_norm_eps)
        src = ref.state_dict()
        dtype = ref.embeddings.word_embeddings.weight.dtype
        new = cls(config).to(dtype)
        state = {k: src[k] for k in new.state_dict() if k.startswith("embeddings.")}
        state["pooler.weight"], state["pooler.bias"] = src["pooler.dense.weight"], src["pooler.dense.bias"]
        for i in range(config.num_hidden_layers):
            p, q = f"encoder.layer.{i}.", f"layers.{i}."
            state[q + "self_attn.in_proj_weight"] = torch.cat([src[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")])
            state[q + "self_attn.in_proj_bias"] = torch.cat([src[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            for mine, theirs in (("self_attn.out_proj", "attention.output.dense"), ("norm1", "attention.output.LayerNorm"),
                                 ("linear1", "intermediate.dense"), ("linear2", "output.dense"),
                                 ("norm2", "output.LayerNorm")):
                for w in ("weight", "bias"):
                    state[q + f"{mine}.{w}"] = src[p + f"{theirs}.{w}"]
        new.load_state_dict(state)
        return new.train(ref.training)


def alibi_bias(T, num_heads, device=None):
    """ALiBi（Press 等，2022）的双向版：第 h 个头的分数加上 -m_h·|i-j|，m_h = 2^(-8h/A)。返回 (A, T, T)。"""
    slopes = 2.0 ** (-8.0 * torch.arange(1, num_heads + 1, device=device) / num_heads)  # (A,)
    pos = torch.arange(T, device=device)
    return -slopes[:, None, None] * (pos[None, :] - pos[:, None]).abs()                # (A, T, T)


def init_weights(module, std=0.02):
    """BERT 的初始化：全连接、嵌入和注意力投影 ~ N(0, 0.02²)，偏置为 0，LayerNorm 为 (1, 0)。"""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=std)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, MultiHeadAttention):
        nn.init.normal_(module.in_proj_weight, std=std)
        nn.init.zeros_(module.in_proj_bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class BertForPreTraining(nn.Module):
    """预训练：MLM 头（全连接 + GELU + LayerNorm，再乘回字向量矩阵）和 NSP 头（池化输出 -> 2 类）。"""

    def __init__(self, config):
        super().__init__()
        self.bert = BertModel(config)
        H = config.hidden_size
        self.mlm_dense = nn.Linear(H, H)
        self.mlm_norm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.mlm_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.nsp = nn.Linear(H, 2)
        for m in (self.mlm_dense, self.nsp):
            init_weights(m, config.initializer_range)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, positions=None):
        """返回 (MLM 对字表的打分, NSP 打分 (B, 2))。

        MLM 打分默认对每个位置给出 (B, T, V)；给了布尔张量 positions (B, T) 时只算这些位置，得 (N, V)，省去大半计算。
        """
        seq, pooled = self.bert(input_ids, token_type_ids, attention_mask)              # (B, T, H), (B, H)
        if positions is not None:
            seq = seq[positions]                                                        # (N, H)
        h = self.mlm_norm(F.gelu(self.mlm_dense(seq)))                                  # (..., H)
        logits = h @ self.bert.embeddings.word_embeddings.weight.T + self.mlm_bias      # 与输入字向量共享 (..., V)
        return logits, self.nsp(pooled)


class BertForSequenceClassification(nn.Module):
    """句子分类：BERT 的输出经池化（cls / mean / max / mean_max）、dropout、全连接得到各类打分。

    cls 用 [CLS] 的池化输出（tanh 全连接之后）；mean / max 对非填充位置的最后一层输出取平均 / 最大；
    mean_max 把两者拼起来（2H 维）。
    """

    def __init__(self, config, num_labels=2, pooling="cls", dropout=None, num_layers=None):
        super().__init__()
        check_int("num_labels", num_labels, minimum=1)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        self.bert = BertModel(config)
        if num_layers is not None:                       # 只用前 num_layers 个 Transformer 块
            check_int("num_layers", num_layers, minimum=1, maximum=config.num_hidden_layers)
            self.bert.layers = self.bert.layers[:num_layers]
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        H = config.hidden_size
        self.classifier = nn.Linear(2 * H if pooling == "mean_max" else H, num_labels)
        init_weights(self.classifier, config.initializer_range)

    def pool(self, seq, pooled, attention_mask):
        if self.pooling == "cls":
            return pooled                                                               # (B, H)
        keep = (attention_mask if attention_mask is not None else seq.new_ones(seq.shape[:2])).unsqueeze(-1).bool()
        mean = (seq * keep).sum(1) / keep.sum(1)                                        # (B, H)
        mx = seq.masked_fill(~keep, float("-inf")).max(1).values                        # (B, H)
        return {"mean": mean, "max": mx, "mean_max": torch.cat([mean, mx], -1)}[self.pooling]

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        """返回各类打分 (B, num_labels)。"""
        seq, pooled = self.bert(input_ids, token_type_ids, attention_mask)
        return self.classifier(self.dropout(self.pool(seq, pooled, attention_mask)))


class BertForTokenClassification(nn.Module):
    """逐字分类（命名实体识别）：BERT 每个位置的最后一层输出经 dropout、全连接，得到各标签的打分。"""

    def __init__(self, config, num_labels, dropout=None):
        super().__init__()
        check_int("num_labels", num_labels, minimum=1)
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        init_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        """返回每个位置的各标签打分 (B, T, num_labels)。"""
        seq, _ = self.bert(input_ids, token_type_ids, attention_mask)                  # (B, T, H)
        return self.classifier(self.dropout(seq))


# ---------- 预训练数据：句子对、[CLS]/[SEP]、段编号、掩码 ----------
def encode_pair(tokenizer, a, b=None, max_len=128):
    """[CLS] A [SEP] B [SEP] 的 id 和段编号（A 部分为 0，B 部分为 1）。太长时从较长的一句末尾逐字截掉。"""
    check_int("max_len", max_len, minimum=3 if b is None else 5)
    ta, tb = tokenizer.encode(a), tokenizer.encode(b) if b is not None else None
    budget = max_len - (3 if tb is not None else 2)
    while len(ta) + (len(tb) if tb is not None else 0) > budget:
        longer = ta if tb is None or len(ta) >= len(tb) else tb
        longer.pop()
    ids = [tokenizer.cls_id] + ta + [tokenizer.sep_id]
    types = [0] * len(ids)
    if tb is not None:
        ids += tb + [tokenizer.sep_id]
        types += [1] * (len(tb) + 1)
    return ids, types


def collate(rows, pad_id):
    """[(ids, types), ...] 补齐到本批最长，返回 input_ids、token_type_ids、attention_mask（均为 (B, T)）。"""
    from lmcourse.text import pad_batch

    input_ids, lengths = pad_batch([ids for ids, _ in rows], pad_id)             # (B, T), (B,)
    token_type_ids, _ = pad_batch([types for _, types in rows], 0)               # (B, T)
    attention_mask = (torch.arange(input_ids.size(1)) < lengths[:, None]).long()  # (B, T)，1 = 真实 token
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}


# ---------- 检查点：python -m lmcourse.ckpt bert_news（配方见仓库的 recipes/bert.py） ----------
def from_checkpoint(name="bert_news"):
    """载入随包分发的小 BERT 预训练检查点，返回 (BertForPreTraining, meta)。"""
    return ckpt.load(name, lambda meta: BertForPreTraining(BertConfig.from_dict(meta["config"])))
