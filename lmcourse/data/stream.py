"""预训练的流式数据：语料一行行读、编码，拼接后切成定长的块（不浪费算力在 [PAD] 上），经打乱缓冲区送给训练循环。

第 e 个块的掩码只由 (种子, e) 决定（目标的 make_batch 用 objectives.example_generator），所以进程数不影响结果。
python -m lmcourse.pretrain 用它；各章经 lmcourse.pretrain 里的同名对象调用。
"""
import collections
import random
from pathlib import Path

import torch

from lmcourse import data, to_device
from lmcourse._check import check_int
from lmcourse.text import normalize_numbers

CORPORA = ("news", "reviews", "both")


def check_corpus(corpus):
    """语料名（news / reviews / both）或逗号分隔的 UTF-8 文本文件路径；文件不存在或为空时报错。"""
    if corpus in CORPORA:
        return corpus
    paths = [Path(p) for p in str(corpus).split(",") if p]
    if not paths:
        raise ValueError(f"参数 corpus 应为 {'、'.join(CORPORA)} 之一或文本文件路径，收到 {corpus!r}")
    for p in paths:
        if not p.is_file():
            raise ValueError(f"参数 corpus 里的文件不存在：{p}")
        with open(p, encoding="utf-8") as f:
            if not any(line.strip() for line in f):
                raise ValueError(f"参数 corpus 里的文件是空的：{p}")
    return corpus


def corpus_lines(corpus, split="train", epoch=0, seed=0):
    """一行一行给出语料的文本。课程语料只有几 MB，整个读进来，每轮按 (seed, epoch) 打乱句子顺序；读者的文件逐行读，从不整个读进内存。"""
    if corpus in CORPORA:
        lines = []
        if corpus in ("news", "both"):
            lines += data.peoples_daily_texts(split)
        if corpus in ("reviews", "both"):
            lines += [d["text"] for d in data.load_sentiment()[split]]
        if split == "train":
            random.Random(seed * 7919 + epoch).shuffle(lines)
        yield from lines
        return
    for p in str(corpus).split(","):
        with open(p, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield line.strip()


def pack(lines, tokenizer, chunk_len, normalize):
    """把句子编码后首尾相接（句间放 [SEP]），切成长 chunk_len 的块，逐个给出。"""
    check_int("chunk_len", chunk_len, minimum=1)

    buf = []
    for line in lines:
        buf.extend(tokenizer.encode(normalize_numbers(line) if normalize else line))
        buf.append(tokenizer.sep_id)
        while len(buf) >= chunk_len:
            yield buf[:chunk_len]
            buf = buf[chunk_len:]


def block_stream(corpus, tokenizer, chunk_len, normalize, seed, shuffle=2048):
    """无穷的块序列 (编号 e, 块)：一轮接一轮，经大小为 shuffle 的打乱缓冲区。所有进程看到同一个序列。"""
    e, epoch = 0, 0
    while True:
        rng = random.Random(seed * 104729 + epoch)
        buf, produced = [], 0
        for chunk in pack(corpus_lines(corpus, "train", epoch, seed), tokenizer, chunk_len, normalize):
            produced += 1
            buf.append(chunk)
            if len(buf) >= shuffle:
                i = rng.randrange(len(buf))
                buf[i], buf[-1] = buf[-1], buf[i]
                yield e, buf.pop()
                e += 1
        rng.shuffle(buf)
        for chunk in buf:
            yield e, chunk
            e += 1
        if produced == 0:
            raise ValueError(f"语料 {corpus} 太短，凑不出一个长 {chunk_len} 的块")
        epoch += 1


class Batches:
    """get_batch(i)：全局第 i 个小批里属于本进程的样本，做成目标要的输入字典（CPU 上的张量）。"""

    def __init__(self, objective, corpus, tokenizer, *, normalize, batch_size, seq_len, seed, rank=0, world=1):
        check_int("batch_size", batch_size, minimum=1)
        check_int("seq_len", seq_len, minimum=2)
        check_int("seed", seed, minimum=0)
        if batch_size % world:
            raise ValueError(f"参数 batch_size={batch_size} 应能被进程数 {world} 整除")
        check_corpus(corpus)
        self.objective, self.seed = objective, seed
        self.batch_size, self.per_rank, self.rank = batch_size, batch_size // world, rank
        self.chunk_len = objective.chunk_len(seq_len)
        self.args = (corpus, tokenizer, self.chunk_len, normalize, seed)
        self.stream, self.recent = None, collections.deque(maxlen=101)

    def _restart(self):
        self.stream = block_stream(*self.args)
        self.recent.clear()
        self.next_e = 0

    def __call__(self, i):
        lo = (i - 1) * self.batch_size + self.rank * self.per_rank
        hi = lo + self.per_rank
        if self.stream is None or self.next_e > lo:
            self._restart()
        rows, others, ids = [], [], []
        while self.next_e < hi:
            e, chunk = next(self.stream)
            self.next_e = e + 1
            if e >= lo:                                    # 别的进程的样本读过就跳过
                other = self.recent[0] if len(self.recent) == self.recent.maxlen else chunk[::-1]
                rows.append(chunk)
                others.append(other)
                ids.append(e)
            self.recent.append(chunk)
        chunks = torch.tensor(rows, dtype=torch.long)
        return self.objective.make_batch(chunks, ids, self.seed, torch.tensor(others, dtype=torch.long))


class Prefetch:
    """get_batch(i)：让 workers 个子进程提前做好批次（读语料、分词、掩码与训练的一步同时进行），按编号的顺序交出来，
    再搬到 device 上（CUDA 上从锁页内存异步拷贝）。workers=0 时就在训练的线程里做。

    批次只由编号 i 决定（Batches 的约定），所以 workers 取几，得到的批次都一样；从要取的第 i 批起，
    第 w 个子进程做第 i + w、i + w + workers、……批。
    """

    def __init__(self, batches, workers=0, device="cpu"):
        self.batches, self.device = batches, torch.device(device)
        self.workers = check_int("workers", workers, minimum=0)
        self.it, self.next_i = None, None

    def __call__(self, i):
        if self.workers == 0:
            batch = self.batches(i)
        else:
            if self.it is None or i != self.next_i:                 # 第一次，或跳到了别处（续训）：从 i 起重新排
                self.it = iter(torch.utils.data.DataLoader(
                    _FromIndex(self.batches, i), batch_size=None, num_workers=self.workers,
                    pin_memory=self.device.type == "cuda", persistent_workers=False))
            batch = next(self.it)
            self.next_i = i + 1
        return to_device(batch, self.device)


class _FromIndex(torch.utils.data.IterableDataset):
    """从编号 first 起的批次；有几个子进程，就各取一份、轮流交出（DataLoader 按子进程轮流取，顺序不乱）。"""

    def __init__(self, batches, first):
        self.batches, self.first = batches, first

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        i, step = (self.first + info.id, info.num_workers) if info else (self.first, 1)
        while True:
            yield self.batches(i)
            i += step


def eval_batches(objective, tokenizer, normalize, seq_len, split="valid", blocks=256, batch_size=64, seed=12345,
                 corpus="news"):
    """留出评估用的固定批次：语料（默认人民日报）某个划分按原顺序打包的前 blocks 块，掩码用固定种子。"""
    chunk_len = objective.chunk_len(seq_len)
    rows = []
    for chunk in pack(corpus_lines(corpus, split), tokenizer, chunk_len, normalize):
        rows.append(chunk)
        if len(rows) == blocks:
            break
    out = []
    for s in range(0, len(rows), batch_size):
        chunks = torch.tensor(rows[s:s + batch_size], dtype=torch.long)
        others = torch.tensor([rows[(j + blocks // 2) % len(rows)] for j in range(s, s + len(chunks))])
        out.append(objective.make_batch(chunks, list(range(s, s + len(chunks))), seed, others))
    return out
