"""序列到序列（Seq2Seq）：LSTM 编码器 + LSTM 解码器，可选 Bahdanau / Luong 注意力。

编码器把源序列读成记忆 (B, S, H)，解码器从 <bos> 开始逐个生成目标词：
- attention=None       只用编码器的最终状态初始化解码器（Sutskever 等，2014）：整句被压进一个定长向量；
- attention="bahdanau" 加性打分，query 是解码器上一步的状态 s_{t-1}，上下文向量 c_t 喂进本步的
                       LSTM 输入（Bahdanau 等，2015）；
- attention="luong"    general（或 dot）打分，query 是本步的状态 h_t，再经注意力隐层
                       h̃_t = tanh(W_c [c_t; h_t]) 输出（Luong 等，2015，不含 input feeding）。
打分和 softmax 都来自 lmcourse.models.attention（同一个想法只有一份实现）。
训练用教师强制（teacher forcing）：forward 一次算出所有位置的 logits；
推断用 greedy_decode / beam_search 逐步生成。
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from lmcourse._check import Config, check_choice, check_int, check_number, check_type
from lmcourse.models.attention import Score, masked_softmax
from lmcourse.text import pad_batch

ATTENTIONS = (None, "bahdanau", "luong")


@dataclass
class Seq2SeqConfig(Config):
    src_vocab_size: int
    tgt_vocab_size: int
    embed_dim: int = 64
    hidden_dim: int = 128                  # 解码器隐状态维数 H；双向编码器每个方向 H/2
    attention: Optional[str] = None        # None、"bahdanau" 或 "luong"
    luong_score: str = "general"           # Luong 的打分："general"（qᵀWk）或 "dot"（qᵀk）
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self):
        check_int("src_vocab_size", self.src_vocab_size, minimum=4)
        check_int("tgt_vocab_size", self.tgt_vocab_size, minimum=4)
        check_int("embed_dim", self.embed_dim, minimum=1)
        check_int("hidden_dim", self.hidden_dim, minimum=2)
        if self.hidden_dim % 2:
            raise ValueError(f"参数 hidden_dim 应为偶数（双向编码器每个方向一半），收到 {self.hidden_dim}")
        check_choice("attention", self.attention, ATTENTIONS)
        check_choice("luong_score", self.luong_score, ("general", "dot"))


class Seq2Seq(nn.Module):
    def __init__(self, config):
        super().__init__()
        check_type("config", config, Seq2SeqConfig, "Seq2SeqConfig")
        self.config = c = config
        E, H, V = c.embed_dim, c.hidden_dim, c.tgt_vocab_size
        # ---- 编码器：双向 LSTM，每个方向 H/2，拼起来正好是 H ----
        self.src_embed = nn.Embedding(c.src_vocab_size, E, padding_idx=c.pad_id)
        self.encoder = nn.LSTM(E, H // 2, batch_first=True, bidirectional=True)
        # ---- 解码器 ----
        self.tgt_embed = nn.Embedding(V, E, padding_idx=c.pad_id)
        if c.attention == "bahdanau":
            self.score = Score("additive", H, H, hidden_dim=H)     # vᵀ tanh(W s_{t-1} + U h_j)
            self.cell = nn.LSTMCell(E + H, H)                      # 输入 [y_{t-1} 的嵌入; c_t]
            self.out = nn.Linear(2 * H, V)                         # 由 [s_t; c_t] 预测 y_t
        else:
            self.rnn = nn.LSTM(E, H, batch_first=True)
            if c.attention == "luong":
                self.score = Score(c.luong_score, H, H)            # h_tᵀ W h_j 或 h_tᵀ h_j
                self.combine = nn.Linear(2 * H, H, bias=False)     # W_c
            self.out = nn.Linear(H, V)

    @property
    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())

    # ---------- 编码 ----------
    def encode(self, src, src_lengths):
        """src (B, S)，src_lengths (B,) -> 记忆 (B, S, H)，解码器初态 (h, c) 各 (1, B, H)，填充掩码 (B, S)。"""
        _check_src(src, src_lengths)
        B, S = src.shape
        x = self.src_embed(src)                                               # (B, S, E)
        packed = nn.utils.rnn.pack_padded_sequence(x, src_lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)     # 填充位置不参与计算
        out, (h, c) = self.encoder(packed)                                    # h, c: (2, B, H/2)
        memory, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, H)
        h = torch.cat([h[0], h[1]], dim=-1).unsqueeze(0)                      # (1, B, H) 前向末态 ; 后向末态
        c = torch.cat([c[0], c[1]], dim=-1).unsqueeze(0)                      # (1, B, H)
        pad_mask = torch.arange(S, device=src.device) >= src_lengths.to(src.device).unsqueeze(1)  # (B, S)
        return memory, (h, c), pad_mask

    # ---------- 解码器（greedy_decode、beam_search）用的三个接口 ----------
    def start(self, src, src_lengths):
        """解码开始：(memory, 初始状态, pad_mask)。"""
        return self.encode(src, src_lengths)

    @staticmethod
    def reorder(state, index):
        """束搜索按 index 挑出、复制假设的状态：LSTM 的 (h, c) 批次在第 1 维。"""
        return tuple(s[:, index] for s in state)

    # ---------- Luong：注意力在 LSTM 之后 ----------
    def _luong(self, h, memory, pad_mask):
        """h (B, T, H) -> logits (B, T, V)，权重 (B, T, S)。"""
        weights = masked_softmax(self.score(h, memory), pad_mask.unsqueeze(1))  # (B, T, S)
        context = weights @ memory                                              # (B, T, H)
        h_tilde = torch.tanh(self.combine(torch.cat([context, h], dim=-1)))     # (B, T, H)
        return self.out(h_tilde), weights

    # ---------- 解码一步 ----------
    def decode_step(self, y_prev, state, memory, pad_mask, keys=None):
        """y_prev (B,) 上一个词 -> (logits (B, V), 新状态, 注意力权重 (B, S) 或 None)。

        keys：Bahdanau 打分里的 U h_j（score.project_keys(memory)），不给就当场算；训练时每句只算一次。
        """
        e = self.tgt_embed(y_prev)                                            # (B, E)
        h, c = state                                                          # 各 (1, B, H)
        if self.config.attention == "bahdanau":
            q = h[0].unsqueeze(1)                                             # (B, 1, H) 上一步状态 s_{t-1}
            s = self.score(q, memory, k_proj=keys)                            # (B, 1, S)
            weights = masked_softmax(s, pad_mask.unsqueeze(1))               # (B, 1, S)
            context = (weights @ memory).squeeze(1)                           # (B, H)
            h1, c1 = self.cell(torch.cat([e, context], dim=-1), (h[0], c[0]))  # 各 (B, H)
            logits = self.out(torch.cat([h1, context], dim=-1))              # (B, V)
            return logits, (h1.unsqueeze(0), c1.unsqueeze(0)), weights.squeeze(1)
        out, state = self.rnn(e.unsqueeze(1), state)                          # (B, 1, H)
        if self.config.attention == "luong":
            logits, weights = self._luong(out, memory, pad_mask)              # (B, 1, V), (B, 1, S)
            return logits.squeeze(1), state, weights.squeeze(1)
        return self.out(out.squeeze(1)), state, None

    # ---------- 训练：教师强制 ----------
    def forward(self, src, src_lengths, tgt_in, return_attention=False):
        """教师强制：解码器每步的输入是正确答案的上一个词。

        src (B, S)，src_lengths (B,)，tgt_in (B, T) = <bos> y -> logits (B, T, V)；
        return_attention=True 时另返回注意力权重 (B, T, S)（无注意力时为 None）。
        """
        memory, state, pad_mask = self.encode(src, src_lengths)
        check_type("tgt_in", tgt_in, torch.Tensor, "torch.Tensor")
        if tgt_in.dim() != 2 or tgt_in.size(0) != src.size(0):
            raise ValueError(f"参数 tgt_in 应为 (B, T) 且 B={src.size(0)}，收到形状 {tuple(tgt_in.shape)}")
        weights = None
        if self.config.attention == "bahdanau":                              # 每步依赖上一步：只能逐步算
            keys = self.score.project_keys(memory)                           # (B, S, H) U h_j，每句只算一次
            steps = []
            for t in range(tgt_in.size(1)):
                logits_t, state, w = self.decode_step(tgt_in[:, t], state, memory, pad_mask, keys)
                steps.append((logits_t, w))
            logits = torch.stack([s[0] for s in steps], 1)                    # (B, T, V)
            weights = torch.stack([s[1] for s in steps], 1)                   # (B, T, S)
        else:                                                                 # LSTM 不依赖注意力：一次算完
            out, _ = self.rnn(self.tgt_embed(tgt_in), state)                  # (B, T, H)
            if self.config.attention == "luong":
                logits, weights = self._luong(out, memory, pad_mask)         # (B, T, V), (B, T, S)
            else:
                logits = self.out(out)                                        # (B, T, V)
        return (logits, weights) if return_attention else logits


def _check_src(src, src_lengths):
    check_type("src", src, torch.Tensor, "torch.Tensor")
    check_type("src_lengths", src_lengths, torch.Tensor, "torch.Tensor")
    if src.dim() != 2 or src.dtype != torch.long:
        raise ValueError(f"参数 src 应为 (B, S) 的 long 张量，收到形状 {tuple(src.shape)}、类型 {src.dtype}")
    if src_lengths.shape != (src.size(0),):
        raise ValueError(f"参数 src_lengths 的形状应为 ({src.size(0)},)，收到 {tuple(src_lengths.shape)}")
    if len(src_lengths) and (src_lengths.min() < 1 or src_lengths.max() > src.size(1)):
        raise ValueError(f"参数 src_lengths 应在 1 到 {src.size(1)} 之间，收到 {src_lengths.tolist()}")


def loss_fn(model, batch):
    """教师强制下的 (交叉熵之和, 非填充位置数)：fit 用两者之比，即整批所有非填充位置放在一起平均（不是先每句平均）。"""
    src, src_lengths, tgt_in, tgt_out = batch                                 # make_batch 的返回值
    logits = model(src, src_lengths, tgt_in)                                  # (B, T, V)
    pad = model.config.pad_id
    loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=pad, reduction="sum")
    return loss, int((tgt_out != pad).sum())


# ---------- 推断 ----------
def _prepare(model, src, src_lengths, max_len):
    """解码器只要求模型有 start、decode_step、reorder 三个方法（Seq2Seq 和第 5 章的 Seq2SeqTransformer 都有）。"""
    if not all(callable(getattr(model, m, None)) for m in ("start", "decode_step", "reorder")):
        raise TypeError(f"参数 model 应有 start、decode_step、reorder 方法（如 Seq2Seq），收到 {type(model).__name__}")
    _check_src(src, src_lengths)
    max_len = 2 * src.size(1) + 4 if max_len is None else max_len
    return check_int("max_len", max_len, minimum=1)


def _trim(tokens, weights, eos_id):
    """截到第一个 <eos>（不含）；对齐保留到 <eos> 那一步（含）。"""
    n = tokens.index(eos_id) if eos_id in tokens else len(tokens)
    return tokens[:n], None if weights is None else weights[:min(n + 1, len(tokens))]


@torch.no_grad()
def greedy_decode(model, src, src_lengths, max_len=None):
    """贪心解码：每步取概率最大的词，直到 <eos> 或 max_len 步（默认 2S + 4）。

    返回 (序列, 对齐)：序列是每个样本的词编号列表（不含 <eos>）；
    对齐是每个样本的权重 (输出步数, 源长度)，含 <eos> 那一步；无注意力时为 None。
    """
    max_len = _prepare(model, src, src_lengths, max_len)
    was_training = model.training
    model.eval()
    c = model.config
    memory, state, pad_mask = model.start(src, src_lengths)
    y = torch.full((src.size(0),), c.bos_id, dtype=torch.long, device=src.device)  # (B,)
    done = torch.zeros_like(y, dtype=torch.bool)
    tokens, weights = [], []
    for _ in range(max_len):
        logits, state, w = model.decode_step(y, state, memory, pad_mask)     # (B, V)
        logits[:, [c.pad_id, c.bos_id]] = float("-inf")                      # 不生成 <pad>、<bos>
        y = logits.argmax(-1)                                                 # (B,)
        tokens.append(y)
        weights.append(w)
        done |= y == c.eos_id
        if done.all():
            break
    model.train(was_training)
    tokens = torch.stack(tokens, 1).tolist()                                  # (B, L)
    att = torch.stack(weights, 1) if weights[0] is not None else None        # (B, L, S)；无注意力时为 None
    out = [_trim(t, None if att is None else att[i, :, :int(src_lengths[i])], c.eos_id)
           for i, t in enumerate(tokens)]
    return [o[0] for o in out], [o[1] for o in out]


@torch.no_grad()
def beam_search(model, src, src_lengths, beam_size=4, max_len=None, length_penalty=0.0,
                return_beams=False):
    """束搜索（按批并行）：每步每个样本保留累计对数概率最高的 beam_size 个前缀。

    已生成 <eos> 的假设留在束里、分数不再变化（只能以 0 代价续接 <pad>），其余假设继续扩展；
    全部结束或到 max_len 步为止。最后按 对数概率 / 长度^length_penalty 选最好的一个
    （length_penalty=0 即按对数概率本身；>0 时减轻对长句的惩罚）。
    返回 (序列, 对齐, 对数概率)，含义同 greedy_decode；return_beams=True 时再返回每个样本
    束中全部假设 [(序列, 对数概率), ...]（按最终排名）。
    """
    max_len = _prepare(model, src, src_lengths, max_len)
    c = model.config
    V = c.tgt_vocab_size
    K = check_int("beam_size", beam_size, minimum=1, maximum=V - 3)
    check_number("length_penalty", length_penalty, minimum=0)
    was_training = model.training
    model.eval()
    B, S = src.shape
    memory, state, pad_mask = model.start(src, src_lengths)
    expand = torch.arange(B, device=src.device).repeat_interleave(K)          # (B·K,) 每个样本复制 K 份
    memory, pad_mask = memory[expand], pad_mask[expand]                       # (B·K, S, H)、(B·K, S)
    state = model.reorder(state, expand)
    scores = torch.full((B, K), float("-inf"), device=src.device)
    scores[:, 0] = 0.0                                                        # 开始时只有一个假设
    tokens = torch.zeros(B, K, 0, dtype=torch.long, device=src.device)        # (B, K, t)
    align = torch.zeros(B, K, 0, S, device=src.device)                        # (B, K, t, S)
    lengths = torch.zeros(B, K, dtype=torch.long, device=src.device)          # 含 <eos> 的长度
    finished = torch.zeros(B, K, dtype=torch.bool, device=src.device)
    y = torch.full((B * K,), c.bos_id, dtype=torch.long, device=src.device)
    offset = (torch.arange(B, device=src.device) * K).unsqueeze(1)            # (B, 1)
    for _ in range(max_len):
        logits, state, w = model.decode_step(y, state, memory, pad_mask)     # (B·K, V)
        logp = F.log_softmax(logits, -1).view(B, K, V)                        # (B, K, V)
        logp[..., c.bos_id] = float("-inf")                                   # 不生成 <bos>
        logp[..., c.pad_id] = float("-inf")
        fin = finished.unsqueeze(-1)                                          # (B, K, 1)
        logp = logp.masked_fill(fin, float("-inf"))
        logp[..., c.pad_id] = logp[..., c.pad_id].masked_fill(finished, 0.0)  # 已结束：只能续 <pad>，代价 0
        top, idx = (scores.unsqueeze(-1) + logp).view(B, K * V).topk(K, dim=-1)  # (B, K)
        parent, tok = idx // V, idx % V                                       # 来自哪个假设、接哪个词
        flat = (offset + parent).view(-1)                                     # (B·K,)
        state = model.reorder(state, flat)
        tokens = torch.cat([tokens.gather(1, parent[..., None].expand_as(tokens)), tok[..., None]], -1)
        if w is not None:
            prev = align.gather(1, parent[..., None, None].expand_as(align))
            align = torch.cat([prev, w[flat].view(B, K, 1, S)], 2)
        finished = finished.gather(1, parent)
        lengths = lengths.gather(1, parent) + (~finished).long()
        finished = finished | (tok == c.eos_id)
        scores, y = top, tok.view(-1)
        if finished.all():
            break
    model.train(was_training)
    ranked = (scores / lengths.clamp(min=1).float() ** length_penalty).argsort(-1, descending=True)
    seqs, aligns, logps, beams = [], [], [], []
    for b in range(B):
        hyps = []
        for k in ranked[b].tolist():
            t, a = _trim(tokens[b, k].tolist(), align[b, k, :, :int(src_lengths[b])] if align.size(2) else None,
                         c.eos_id)
            hyps.append((t, a, float(scores[b, k])))
        seqs.append(hyps[0][0])
        aligns.append(hyps[0][1])
        logps.append(hyps[0][2])
        beams.append([(t, s) for t, _, s in hyps])
    return (seqs, aligns, logps, beams) if return_beams else (seqs, aligns, logps)


@torch.no_grad()
def sequence_log_prob(model, src, src_lengths, sequences):
    """在模型下给定输出序列（不含 <eos>，会自动补上）的对数概率 log P(y <eos> | x)，返回 (B,) 张量。"""
    check_type("model", model, Seq2Seq, "Seq2Seq")
    check_type("sequences", sequences, (list, tuple), "词编号列表的列表")
    if len(sequences) != src.size(0):
        raise ValueError(f"参数 sequences 的长度应为 {src.size(0)}，收到 {len(sequences)}")
    c = model.config
    tgt_in, _ = pad_batch([[c.bos_id] + list(s) for s in sequences], c.pad_id)     # (B, T)
    tgt_out, _ = pad_batch([list(s) + [c.eos_id] for s in sequences], c.pad_id)    # (B, T)
    tgt_in, tgt_out = tgt_in.to(src.device), tgt_out.to(src.device)
    was_training = model.training
    model.eval()
    logp = F.log_softmax(model(src, src_lengths, tgt_in), -1)                # (B, T, V)
    model.train(was_training)
    picked = logp.gather(-1, tgt_out.unsqueeze(-1)).squeeze(-1)               # (B, T)
    return picked.masked_fill(tgt_out == c.pad_id, 0.0).sum(-1)


def translate(model, sources, src_vocab, tgt_vocab, method="greedy", beam_size=4, batch_size=500,
              max_len=None):
    """把一列源字符串译成目标字符串（按长度分批，结果保持原顺序）。"""
    check_choice("method", method, ("greedy", "beam"))
    check_int("batch_size", batch_size, minimum=1)
    from lmcourse.data.synthetic import make_batch

    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))      # 长度相近的放一批，少填充
    out = [None] * len(sources)
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        src, lengths, _, _ = make_batch([(sources[j], "") for j in idx], src_vocab, tgt_vocab)
        if method == "greedy":
            seqs = greedy_decode(model, src, lengths, max_len)[0]
        else:
            seqs = beam_search(model, src, lengths, beam_size, max_len)[0]
        for j, s in zip(idx, seqs):
            out[j] = tgt_vocab.decode(s)
    return out
