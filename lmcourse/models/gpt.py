"""GPT（Radford 等，2018）与 GPT-2（Radford 等，2019）：只有解码器的 Transformer，从左到右训练的语言模型。

每个位置只能看见它自己和左边的 token（因果掩码），用上文预测下一个 token。
输入 = token 向量 wte + 位置向量 wpe（学出来的）；输出层与 wte 共享权重。
GPT-1 是后归一化（残差相加之后做 LayerNorm）；GPT-2 改成前归一化，并在最后加一个 LayerNorm（ln_f）。
参数名与 Hugging Face 的 GPT2LMHeadModel 一一对应（OpenAIGPTLMHeadModel 只是嵌入的名字不同），from_hf 可以直接拷权重。
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse import ckpt, device_of
from lmcourse._check import Config, check_choice, check_int, check_number, check_type
from lmcourse.models.bert import init_weights

ACTIVATIONS = ("gelu_new", "gelu")   # gelu_new：GELU 的 tanh 近似（GPT-1 / GPT-2 用的）；gelu：精确的 erf 形式


# 预训练命令的尺寸（--preset）；small 与小 BERT 同宽同深
SIZES = {"tiny": dict(n_embd=64, n_layer=2, n_head=2), "small": dict(n_embd=128, n_layer=4, n_head=4),
         "medium": dict(n_embd=256, n_layer=4, n_head=4), "base": dict(n_embd=768, n_layer=12, n_head=12)}


@dataclass
class GPTConfig(Config):
    vocab_size: int = 50257        # 默认值即 GPT-2 small
    n_positions: int = 1024        # 最长上下文
    n_embd: int = 768              # C
    n_layer: int = 12
    n_head: int = 12
    dropout: float = 0.1           # 嵌入、注意力权重、残差分支共用一个比例
    layer_norm_eps: float = 1e-5
    post_ln: bool = False          # True：GPT-1 的后归一化，没有 ln_f；False：GPT-2 的前归一化 + ln_f
    activation: str = "gelu_new"

    def __post_init__(self):
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            check_int(f"config.{name}", getattr(self, name), minimum=1)
        if self.n_embd % self.n_head:
            raise ValueError(f"参数 config.n_head={self.n_head} 应整除 n_embd={self.n_embd}")
        check_number("config.dropout", self.dropout, minimum=0)
        if self.dropout >= 1:
            raise ValueError(f"参数 config.dropout 应小于 1，收到 {self.dropout}")
        check_number("config.layer_norm_eps", self.layer_norm_eps, minimum=0, strict=True)
        check_type("config.post_ln", self.post_ln, bool, "布尔值")
        check_choice("config.activation", self.activation, ACTIVATIONS)

    @classmethod
    def gpt2(cls, **kw):
        """GPT-2 small：字表 50257，上下文 1024，C=768，12 层，12 个头，dropout 0.1（共 124M 参数）。"""
        return cls(**dict(dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                               dropout=0.1), **kw))

    @classmethod
    def gpt1(cls, **kw):
        """GPT-1：字表 40478（BPE），上下文 512，C=768，12 层，12 个头，后归一化（共 116.5M 参数）。"""
        return cls(**dict(dict(vocab_size=40478, n_positions=512, n_embd=768, n_layer=12, n_head=12,
                               dropout=0.1, post_ln=True), **kw))


def count_parameters(config):
    """按公式数 GPT 的参数（输出层与 wte 共享，不重复计），不必真的建模型。"""
    check_type("config", config, GPTConfig, "GPTConfig")
    C, V = config.n_embd, config.vocab_size
    embeddings = (V + config.n_positions) * C                  # wte + wpe
    attention = (C * 3 * C + 3 * C) + (C * C + C) + 2 * C      # c_attn、c_proj + ln_1
    mlp = (C * 4 * C + 4 * C) + (4 * C * C + C) + 2 * C        # c_fc、c_proj + ln_2
    final = 0 if config.post_ln else 2 * C                     # ln_f
    return embeddings + config.n_layer * (attention + mlp) + final


class CausalSelfAttention(nn.Module):
    """多头因果自注意力；Q、K、V 由一个 (C, 3C) 的全连接 c_attn 一次算出。"""

    def __init__(self, config):
        super().__init__()
        self.n_head, self.p = config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_drop = nn.Dropout(config.dropout)
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x, past=None, need_weights=False):
        """x (B, T, C)；past 是缓存的 (k, v)，各 (B, nh, P, d)。返回 (输出, 新的 (k, v), 权重或 None)。"""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)                                       # 各 (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, d)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)               # (B, nh, S, d)，S = P + T
        S = k.size(2)
        mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)         # (T, S)，新位置看得见全部缓存
        p = self.p if self.training else 0.0
        w = None
        if need_weights:                                                               # 显式地算，好把权重拿出来画图
            att = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))                     # (B, nh, T, S)
            w = att.masked_fill(~mask, float("-inf")).softmax(-1)                      # 返回的是 dropout 之前的权重
            y = self.attn_drop(w) @ v                                                  # (B, nh, T, d)
        else:                                                                          # 融合算子（GPU 上快得多；CPU 上训练时退回普通实现）
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if S == T or T == 1 else mask,
                                               dropout_p=p, is_causal=S == T)
        y = y.transpose(1, 2).reshape(B, T, C)                                         # 各头拼回 (B, T, C)
        return self.resid_drop(self.c_proj(y)), (k, v), w


class MLP(nn.Module):
    """逐位置的前馈网络：C -> 4C -> C。"""

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.approximate = "tanh" if config.activation == "gelu_new" else "none"
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.drop(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))   # (B, T, C)


class Block(nn.Module):
    """一个 Transformer 解码器块：因果自注意力 + 前馈网络，各带残差连接和 LayerNorm。"""

    def __init__(self, config):
        super().__init__()
        self.post_ln = config.post_ln
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, past=None, need_weights=False):
        if self.post_ln:                                         # GPT-1：先加残差，再归一化
            a, kv, w = self.attn(x, past, need_weights)
            x = self.ln_1(x + a)
            x = self.ln_2(x + self.mlp(x))
        else:                                                    # GPT-2：子层的输入先归一化，残差通路保持原样
            a, kv, w = self.attn(self.ln_1(x), past, need_weights)
            x = x + a
            x = x + self.mlp(self.ln_2(x))
        return x, kv, w                                          # (B, T, C)


class GPT(nn.Module):
    """GPT 语言模型。forward(idx) 给出每个位置上下一个 token 的打分 (B, T, V)。"""

    def __init__(self, config):
        super().__init__()
        check_type("config", config, GPTConfig, "GPTConfig")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.Identity() if config.post_ln else nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight                    # 输出层与输入的 token 向量共享
        self.apply(init_weights)                                 # 与 BERT 相同：N(0, 0.02²)，偏置 0（GPT-1 就到此为止）
        if not config.post_ln:                                   # GPT-2：残差分支的输出投影再按 1/√(2L) 缩小，
            for name, p in self.named_parameters():              # 否则 2L 个分支相加后残差流的方差随深度变大
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, std=0.02 / math.sqrt(2 * config.n_layer))

    def forward(self, idx, cache=None, need_weights=False):
        """idx：(B, T) 的 token id。返回打分 (B, T, V)；need_weights=True 时返回 (打分, 每层的权重 [(B, nh, T, S)])。

        cache：None，或一个 list（开始时传空的 []），forward 会就地写进每层的 (k, v)，各 (B, nh, S, d)。
        再次调用时只需传新的 token：位置编号从已缓存的长度 P 接着数，新位置看得见全部 S = P + T 个位置。
        """
        h, weights = self.hidden(idx, cache, need_weights)                             # (B, T, C)
        logits = self.lm_head(h)                                                        # (B, T, V)
        return (logits, weights) if need_weights else logits

    def hidden(self, idx, cache=None, need_weights=False):
        """最后一层（过 ln_f 之后）的输出 (B, T, C) 和每层的注意力权重：打分之前的特征，微调时接任务的输出层。"""
        check_type("idx", idx, torch.Tensor, "torch.LongTensor")
        if idx.dtype not in (torch.long, torch.int):
            raise TypeError(f"参数 idx 应为整数张量（torch.long），收到 dtype {idx.dtype}")
        if idx.dim() != 2 or idx.size(1) == 0:
            raise ValueError(f"参数 idx 应为 (B, T) 的二维张量且 T ≥ 1，收到形状 {tuple(idx.shape)}")
        if cache is not None:
            check_type("cache", cache, list, "list")
            if cache and len(cache) != self.config.n_layer:
                raise ValueError(f"参数 cache 应有 {self.config.n_layer} 层的 (k, v)，收到 {len(cache)} 层")
        P = cache[0][0].size(2) if cache else 0                  # 已缓存的长度
        T = idx.size(1)
        if P + T > self.config.n_positions:
            raise ValueError(f"参数 idx 的长度 {T}（加上缓存 {P}）超过 n_positions={self.config.n_positions}")
        pos = torch.arange(P, P + T, device=idx.device)                                 # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))                                    # (B, T, C)
        weights = []
        for i, block in enumerate(self.h):
            x, kv, w = block(x, cache[i] if P else None, need_weights)
            if cache is not None:
                cache[i:i + 1] = [kv]                            # 第一次调用时追加，之后替换
            weights.append(w)
        return self.ln_f(x), weights                                                    # (B, T, C)

    def nll(self, x, y):
        """平均交叉熵：用 x 的每个位置预测 y 的同一位置。返回 (loss, 打分 (B, T, V))。"""
        logits = self(x)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten()), logits

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
                 use_cache=True, truncate=False):
        """在 idx (B, T) 后面续写 max_new_tokens 个 token，返回 (B, T + max_new_tokens)。

        每步先按 top_k / top_p 过滤，再从 softmax(打分 / 温度) 里抽样；top_k=1 就是贪心解码。
        use_cache=True 时每步只算新的一个 token；写到超过 n_positions 时只看最后 n_positions 个（此后每步重算）。
        提示本身长于 n_positions 时报错，除非 truncate=True（只留提示的最后 n_positions 个）。
        """
        check_type("idx", idx, torch.Tensor, "torch.LongTensor")
        check_int("max_new_tokens", max_new_tokens, minimum=0)
        check_number("temperature", temperature, minimum=0, strict=True)
        _check_filters(top_k, top_p)
        if idx.dim() == 2 and idx.size(1) > self.config.n_positions and not truncate:
            raise ValueError(f"参数 idx 的提示长 {idx.size(1)}，超过 n_positions={self.config.n_positions}；"
                             "要只用最后一段，请传 truncate=True")
        if generator is not None:
            check_type("generator", generator, torch.Generator, "torch.Generator")
        was, N = self.training, self.config.n_positions
        self.eval()
        try:
            cache = None
            for _ in range(max_new_tokens):
                if cache and cache[0][0].size(2) < N:            # 缓存里还放得下：只喂最后一个 token
                    logits = self(idx[:, -1:], cache=cache)
                else:                                            # 第一步、不用缓存或缓存已满：重算最后 N 个
                    cache = [] if use_cache else None
                    logits = self(idx[:, -N:], cache=cache)
                logits = logits[:, -1]                                                  # (B, V)
                if top_k == 1:                                           # 贪心：不必抽样
                    nxt = logits.argmax(-1, keepdim=True)                               # (B, 1)
                else:
                    probs = F.softmax(filter_logits(logits / temperature, top_k, top_p), -1)
                    nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device)  # (B, 1)，在 CPU 上抽：与设备无关
                idx = torch.cat([idx, nxt], 1)
        finally:
            self.train(was)
        return idx

    @classmethod
    def from_hf(cls, ref):
        """由 Hugging Face 的 GPT2LMHeadModel（GPT-2）或 OpenAIGPTLMHeadModel（GPT-1，后归一化）
        拷贝出一个权重相同的新实例（同 dtype，eval 模式）。"""
        kind = type(ref).__name__
        if kind not in ("GPT2LMHeadModel", "OpenAIGPTLMHeadModel") or not hasattr(ref, "transformer"):
            raise TypeError(f"参数 ref 应为 transformers.GPT2LMHeadModel 或 OpenAIGPTLMHeadModel，收到 {kind}")
        c = ref.config
        gpt1 = kind == "OpenAIGPTLMHeadModel"
        act, want = (c.afn, "gelu") if gpt1 else (c.activation_function, "gelu_new")  # OpenAIGPT 的 "gelu" 即 gelu_new
        if act != want:
            raise ValueError(f"参数 ref 的激活函数应为 {want}，收到 {act!r}")
        if not gpt1 and (c.n_inner not in (None, 4 * c.n_embd) or not c.scale_attn_weights
                         or c.scale_attn_by_inverse_layer_idx):
            raise ValueError("参数 ref 的结构与 GPT-2 不同（n_inner 或注意力缩放方式），无法拷贝")
        names = {"wte": "tokens_embed", "wpe": "positions_embed"} if gpt1 else {}       # 只有嵌入的名字不同
        src = ref.state_dict()
        if not torch.equal(src["lm_head.weight"], src["transformer." + names.get("wte", "wte") + ".weight"]):
            raise ValueError("参数 ref 的输出层与 wte 不共享权重，无法拷贝")
        config = GPTConfig(vocab_size=c.vocab_size, n_positions=c.n_positions, n_embd=c.n_embd, n_layer=c.n_layer,
                           n_head=c.n_head, dropout=c.resid_pdrop, layer_norm_eps=c.layer_norm_epsilon, post_ln=gpt1)
        new = cls(config).to(ref.lm_head.weight.dtype)
        state = {}
        for k in new.state_dict():
            head, _, rest = k.partition(".")
            v = src[k if k == "lm_head.weight" else f"transformer.{names.get(head, head)}.{rest}"]
            state[k] = v.t() if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")) else v  # Conv1D 是 (入, 出)
        new.load_state_dict(state)
        return new.eval()


@torch.no_grad()
def perplexity(model, stream, context=256, stride=128, batch_size=16):
    """一条 id 序列上的困惑度：context 个 token 的窗口每次前移 stride，只算窗口后 stride 个位置的损失，
    所以除了开头，每个被预测的 token 都至少有 context - stride 个 token 的上文。"""
    from lmcourse.metrics import perplexity as ppl

    check_int("context", context, minimum=2)
    check_int("stride", stride, minimum=1)
    if stride > context:
        raise ValueError(f"参数 stride={stride} 不应大于 context={context}")
    stream = torch.as_tensor(stream)
    device = device_of(model)
    was = model.training
    model.eval()
    starts = list(range(0, max(len(stream) - context - 1, 0) + 1, stride))
    total = count = 0
    for i in range(0, len(starts), batch_size):
        part = starts[i:i + batch_size]
        x = torch.stack([stream[s:s + context] for s in part]).to(device)      # (B, context)
        y = torch.stack([stream[s + 1:s + context + 1] for s in part]).to(device)
        nll = F.cross_entropy(model(x).transpose(1, 2), y, reduction="none")   # (B, context)
        keep = torch.zeros(context, dtype=torch.bool, device=device)
        keep[context - stride:] = True                                          # 只算窗口后 stride 个位置
        if part[0] == 0:
            nll_first = nll[0, :context - stride].sum()                         # 开头的窗口：前面的位置也算
            total, count = total + float(nll_first), count + context - stride
        total, count = total + float(nll[:, keep].sum()), count + int(keep.sum()) * len(part)
    model.train(was)
    return ppl(total / count)


class GPTClassifier(nn.Module):
    """GPT-1 的微调：文本两头加上开始符和“抽取符”，取抽取符（最后一个真 token）处的输出接一层线性分类器。

    损失可以再加上 λ 倍的语言模型损失（辅助目标，forward(..., with_lm_loss=True)），论文取 λ = 0.5。
    forward 的参数与 BERT 的分类器相同（token_type_ids 不用），方便共用微调与评估的代码。
    """

    def __init__(self, gpt, num_labels=2, dropout=0.1):
        super().__init__()
        check_type("gpt", gpt, GPT, "GPT")
        self.gpt = gpt
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(gpt.config.n_embd, num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, with_lm_loss=False):
        """input_ids (B, T)，右侧补齐；attention_mask (B, T)，真 token 为 1。返回分类打分 (B, num_labels)。

        with_lm_loss=True 时另返回同一批文本上的语言模型损失（辅助目标，只算真 token 的下一个字），两者共用一次前向。
        """
        h = self.gpt.hidden(input_ids)[0]                                       # (B, T, C)
        last = (attention_mask.sum(1) - 1 if attention_mask is not None
                else torch.full((h.size(0),), h.size(1) - 1, device=h.device))  # (B,) 抽取符的位置
        logits = self.classifier(self.drop(h[torch.arange(h.size(0)), last]))  # (B, num_labels)
        if not with_lm_loss:
            return logits
        lm_logits = self.gpt.lm_head(h[:, :-1])                                 # (B, T-1, V)
        target = input_ids[:, 1:]
        if attention_mask is not None:
            target = target.masked_fill(attention_mask[:, 1:] == 0, -100)
        return logits, F.cross_entropy(lm_logits.transpose(1, 2), target)


def filter_logits(logits, top_k=None, top_p=None):
    """把打分 (..., V) 里不要的 token 设成 -inf。

    top_k：只留打分最高的 k 个（与第 k 名并列的也留下）；
    top_p（核采样）：按概率从高到低，留下累计概率刚好达到 top_p 的最少几个，最高的那个总会留下。
    """
    check_type("logits", logits, torch.Tensor, "torch.Tensor")
    _check_filters(top_k, top_p)
    if top_k is not None:
        kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[..., -1:]           # (..., 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)                        # (..., V)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p                 # 排在它前面的已经够 top_p 了
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))  # 排回原顺序
    return logits


def _check_filters(top_k, top_p):
    if top_k is not None:
        check_int("top_k", top_k, minimum=1)
    if top_p is not None:
        check_number("top_p", top_p, minimum=0, maximum=1, strict=True)


# ---------- 检查点：python -m lmcourse.ckpt gpt_news（配方见仓库的 recipes/gpt.py） ----------
def from_checkpoint(name="gpt_news"):
    """载入随包分发的小 GPT，返回 (GPT 的 eval 模式, meta)；字表是 lmcourse.data.lm_tokenizer()。"""
    return ckpt.load(name, lambda meta: GPT(GPTConfig.from_dict(meta["config"])))
