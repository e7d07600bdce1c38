"""Bengio 等（2003）的前馈神经网络语言模型（NNLM）。

y = b + W·x + U·tanh(d + H·x)，x 是前 n-1 个字的词向量拼接（W 为可选的"直连"）。
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse._check import check_int


@dataclass
class NNLMConfig:
    vocab_size: int = 4138
    context: int = 4        # 看前 n-1 个字
    embed_dim: int = 64     # 词向量维度 m
    hidden_dim: int = 256   # 隐藏层宽度 h
    direct: bool = False    # 是否有从词向量直连输出的 W
    dropout: float = 0.0


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
        if context.dim() != 2 or context.size(1) != self.config.context:
            raise ValueError(f"参数 context 的形状应为 (B, {self.config.context})，收到 {tuple(context.shape)}")
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
    x, y = batch
    return F.cross_entropy(model(x), y)


def lm_eval_batches(stream, context, batch_size=4096):
    """评估用：依次给出序列里第 1 个之后的每个位置。"""
    for start in range(1, len(stream), batch_size):
        pos = torch.arange(start, min(start + batch_size, len(stream)))
        yield windows(stream, pos, context)


def lm_sum_loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y, reduction="sum"), len(y)


@torch.no_grad()
def sample(model, context_ids, length, generator=None, temperature=1.0):
    """从 NNLM 逐字抽样 length 个 id。"""
    model.eval()
    ids = list(context_ids)
    n = model.config.context
    for _ in range(check_int("length", length, minimum=0)):
        ctx = torch.tensor([([ids[0]] * n + ids)[-n:]])
        probs = F.softmax(model(ctx)[0] / temperature, dim=-1)
        ids.append(int(torch.multinomial(probs, 1, generator=generator)))
    return ids[len(ids) - length:]


# ---------- 检查点：同一结构，训练得更久（python -m lmcourse.ckpt nnlm） ----------
CHECKPOINT_STEPS = 12000
CHECKPOINT_BATCH = 512


def from_checkpoint():
    """载入随包分发的 NNLM 检查点，返回 (model, meta)。"""
    from lmcourse import ckpt, data

    state, meta = ckpt.load_state("nnlm", data.lm_tokenizer())
    model = NNLM(NNLMConfig(**meta["config"]))
    model.load_state_dict(state)
    return model.eval(), meta


def train_checkpoint(steps=CHECKPOINT_STEPS, batch_size=CHECKPOINT_BATCH, seed=0):
    """训练检查点用的 NNLM：固定种子、固定步数，每 1000 步记录验证困惑度。"""
    import math
    from dataclasses import asdict

    from lmcourse import ckpt, data, set_seed
    from lmcourse.train import evaluate, fit

    set_seed(seed)
    tok = data.lm_tokenizer()
    config = NNLMConfig(vocab_size=len(tok))
    model = NNLM(config)
    train, valid, test = (data.lm_stream(s) for s in data.SPLITS)
    g = torch.Generator().manual_seed(seed)

    def get_batch(step):
        return windows(train, torch.randint(1, len(train), (batch_size,), generator=g), config.context)

    def eval_fn(m):
        return {"valid_ppl": math.exp(evaluate(m, lm_eval_batches(valid, config.context), lm_sum_loss))}

    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=1e-4)
    hist = fit(model, get_batch, lm_loss, steps, optimizer=opt, scheduler=sched, eval_fn=eval_fn,
               eval_every=1000, desc="NNLM 检查点")
    test_ppl = math.exp(evaluate(model, lm_eval_batches(test, config.context), lm_sum_loss))
    meta = {
        "config": asdict(config), "vocab_hash": ckpt.vocab_hash(tok), "seed": seed,
        "data": "人民日报 1998-01，lmcourse.data.lm_stream 的 train 训练 / valid 监控 / test 报告",
        "optimizer": f"Adam lr=3e-3，余弦退火到 1e-4，batch={batch_size}，steps={steps}",
        "tokens_seen": steps * batch_size, "train_seconds": round(hist.last["seconds"], 1),
        "history": [{"step": r["step"], "seconds": round(r["seconds"], 1), "valid_ppl": round(r["valid_ppl"], 2)}
                    for r in hist.records],
        "metrics": {"valid_ppl": round(hist.last["valid_ppl"], 2), "test_ppl": round(test_ppl, 2)},
    }
    return model, meta
