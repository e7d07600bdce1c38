"""合成任务：阿拉伯数字 → 汉字读法（如 "2024" → "二千零二十四"）。

规则是确定的，数据按固定种子生成，训练 / 验证 / 测试集按"数"互不相交；
test_long 是 9–10 位的数，比训练集里最长的（8 位）还长，用来考查长度上的外推。
"""
import random
from functools import lru_cache

from lmcourse._check import check_choice, check_int, check_type

DIGITS = "零一二三四五六七八九"
SMALL_UNITS = ("", "十", "百", "千")    # 一节（4 位）之内的位
BIG_UNITS = ("", "万", "亿")            # 节的单位：个、万、亿
LIMIT = 10 ** 12

SPLITS = ("train", "valid", "test", "test_long")
SIZES = {"train": 30000, "valid": 1000, "test": 2000, "test_long": 1000}
MAX_DIGITS = 8                           # train / valid / test 的最长位数
LONG_DIGITS = (9, 10)                    # test_long 的位数


def _section(n):
    """读一节（0 < n < 10000）：中间的连续零读一个"零"，末尾的零不读。"""
    out, zero = [], False
    for pos in range(3, -1, -1):
        d = n // 10 ** pos % 10
        if d == 0:
            zero = bool(out)                 # 前面已有数字时，记下"欠一个零"
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(DIGITS[d] + SMALL_UNITS[pos])
    return "".join(out)


def number_to_chinese(n):
    """把 0 ≤ n < 10¹² 的整数读成汉字，如 10001 → "一万零一"，120000300 → "一亿二千万零三百"。

    从高到低按 4 位一节（亿、万、个）读；一节不满千、或前面有整节为零时，补读一个"零"；
    最高一节是 10–19 时读"十…"而不是"一十…"（10 → 十，100000 → 十万）。用"二"不用"两"。
    """
    n = check_int("n", n, minimum=0, maximum=LIMIT - 1)
    if n == 0:
        return "零"
    sections = [n // 10 ** 8, n // 10 ** 4 % 10 ** 4, n % 10 ** 4]   # 亿、万、个 三节
    out, skipped = [], False
    for i, sec in enumerate(sections):
        if sec == 0:
            skipped = skipped or bool(out)   # 前面有数时，整节为零要在下一节前补"零"
            continue
        if out and (sec < 1000 or skipped):
            out.append("零")
        out.append(_section(sec) + BIG_UNITS[2 - i])
        skipped = False
    text = "".join(out)
    return text[1:] if text.startswith("一十") else text


# ---------- 数据集 ----------
def _draw(rng, digits):
    """随机取一个 digits 位的数；一半的数再把若干位置零，让"零"的规则足够常见。"""
    if digits == 1:
        return rng.randrange(10)
    ds = [rng.randrange(1, 10)] + [rng.randrange(10) for _ in range(digits - 1)]
    if rng.random() < 0.5:
        p = rng.choice((0.3, 0.6))
        ds = ds[:1] + [0 if rng.random() < p else d for d in ds[1:]]
    return int("".join(map(str, ds)))


def _unique(rng, count, lengths, exclude=()):
    """先均匀地抽位数、再抽数，直到凑齐 count 个不同的数（保持抽到的顺序）。"""
    seen, out = set(exclude), []
    while len(out) < count:
        n = _draw(rng, rng.choice(lengths))
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


@lru_cache(maxsize=8)
def _numbers(seed):
    rng = random.Random(seed)
    short = _unique(rng, SIZES["train"] + SIZES["valid"] + SIZES["test"], range(1, MAX_DIGITS + 1))
    rng.shuffle(short)
    a, b = SIZES["test"], SIZES["test"] + SIZES["valid"]
    return {"test": tuple(short[:a]), "valid": tuple(short[a:b]), "train": tuple(short[b:]),
            "test_long": tuple(_unique(rng, SIZES["test_long"], LONG_DIGITS))}


def number_pairs(split, seed=0):
    """读数任务的 (源: 数字串, 目标: 汉字读法) 对，如 ("2024", "二千零二十四")。

    split 为 "train"（30000 对）、"valid"（1000）、"test"（2000）或 "test_long"（1000）。
    前三者是 1–8 位的数（先均匀抽位数再抽数，一半的数有若干位置零），按数互不相交；
    test_long 是 9–10 位的数，训练时从未见过这么长的输入（也从未见过"亿"）。
    同一 seed 每次给出相同的结果。
    """
    check_choice("split", split, SPLITS)
    check_int("seed", seed, minimum=0)
    return [(str(n), number_to_chinese(n)) for n in _numbers(seed)[split]]


# ---------- 词表与批次 ----------
class Vocab:
    """字符词表：0、1、2 号固定为 <pad>、<bos>、<eos>，其余每个字符一个编号。"""

    PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, chars):
        check_type("chars", chars, str, "字符串")
        if len(set(chars)) != len(chars) or not chars:
            raise ValueError(f"参数 chars 应为不重复的非空字符串，收到 {chars!r}")
        self.itos = [self.PAD, self.BOS, self.EOS] + list(chars)
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    def __len__(self):
        return len(self.itos)

    def __repr__(self):
        return f"Vocab({''.join(self.itos[3:])!r})"

    def encode(self, text):
        """字符串 → 编号列表（不加 <bos>/<eos>）。"""
        check_type("text", text, str, "字符串")
        bad = [c for c in text if c not in self.stoi or self.stoi[c] < 3]
        if bad:
            raise ValueError(f"参数 text 含词表外的字符 {bad[0]!r}：{text!r:.60}")
        return [self.stoi[c] for c in text]

    def decode(self, ids):
        """编号 → 字符串：遇到 <eos> 停止，跳过 <pad> 和 <bos>。"""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"参数 ids 含越界的编号 {i}（词表大小 {len(self.itos)}）")
            if i == self.eos_id:
                break
            if i > self.eos_id:
                out.append(self.itos[i])
        return "".join(out)


SRC_VOCAB = Vocab("0123456789")
TGT_VOCAB = Vocab(DIGITS + "十百千万亿")


def source_vocab():
    """源端（阿拉伯数字）词表，大小 13。"""
    return SRC_VOCAB


def target_vocab():
    """目标端（汉字读法）词表，大小 18。"""
    return TGT_VOCAB


def make_batch(pairs, src_vocab=SRC_VOCAB, tgt_vocab=TGT_VOCAB):
    """把 (源, 目标) 对拼成一个批次，不足处用 pad_id 填充。

    返回 (src, src_lengths, tgt_in, tgt_out)：
    src (B, S) long，S 为最长源串的长度；src_lengths (B,) long；
    tgt_in (B, T) = <bos> y，tgt_out (B, T) = y <eos>，T 为最长目标长度 + 1。
    """
    from lmcourse.text import pad_batch

    check_type("pairs", pairs, (list, tuple), "(源, 目标) 对的列表")
    if not pairs:
        raise ValueError("参数 pairs 为空")
    srcs = [src_vocab.encode(s) for s, _ in pairs]
    tgts = [tgt_vocab.encode(t) for _, t in pairs]
    if min(map(len, srcs)) == 0:
        raise ValueError("参数 pairs 含空的源串")
    src, src_lengths = pad_batch(srcs, src_vocab.pad_id)                             # (B, S), (B,)
    tgt_in, _ = pad_batch([[tgt_vocab.bos_id] + y for y in tgts], tgt_vocab.pad_id)  # (B, T)
    tgt_out, _ = pad_batch([y + [tgt_vocab.eos_id] for y in tgts], tgt_vocab.pad_id)  # (B, T)
    return src, src_lengths, tgt_in, tgt_out


def exact_match(predictions, targets):
    """完全匹配率：预测与答案逐字相同的比例（0–1）。"""
    check_type("predictions", predictions, (list, tuple), "字符串列表")
    check_type("targets", targets, (list, tuple), "字符串列表")
    if len(predictions) != len(targets):
        raise ValueError(f"参数 predictions 与 targets 的长度应相同，收到 {len(predictions)} 和 {len(targets)}")
    if not targets:
        raise ValueError("参数 targets 为空")
    return sum(p == t for p, t in zip(predictions, targets)) / len(targets)
