"""文本工具：字符级分词器、数字归一化、中文里的英文词片段，以及把若干条 id 序列补齐成一批的 pad_batch。"""
import json
import re
from collections import Counter
from pathlib import Path

from lmcourse._check import check_int, check_type

NUM_TOKEN = "#NUM#"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", NUM_TOKEN]
_FULLWIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)}
                           | {chr(0xFF21 + i): chr(0x41 + i) for i in range(26)}
                           | {chr(0xFF41 + i): chr(0x61 + i) for i in range(26)})
_NUMBER = re.compile(r"\d+(?:[.．]\d+)?")
_ENGLISH = re.compile(r"[A-Za-z]+(?:['’-][A-Za-z]+)*")


def pad_batch(sequences, pad_id):
    """若干条 id 序列补齐到最长的一条（torch.nn.utils.rnn.pad_sequence）：返回 (ids (B, T) long, lengths (B,) long)。

    全书只有这一个补齐的地方：BERT 的批次、ELMo 的句子、Seq2Seq 的源串和目标串都用它。
    """
    import torch
    from torch.nn.utils.rnn import pad_sequence

    check_type("sequences", sequences, (list, tuple), "id 列表的列表")
    if not sequences:
        raise ValueError("参数 sequences 为空")
    check_int("pad_id", pad_id, minimum=0)
    rows = [torch.as_tensor(list(s), dtype=torch.long) for s in sequences]
    return pad_sequence(rows, batch_first=True, padding_value=pad_id), torch.tensor([len(r) for r in rows])


def to_halfwidth(text):
    """把全角数字和字母（１９９８、ＡＢＣ）换成半角，其余字符不变。"""
    check_type("text", text, str, "字符串")
    return text.translate(_FULLWIDTH)


def normalize_numbers(text, token=NUM_TOKEN):
    """把每一串数字（含全角、小数）换成一个 #NUM# 记号。"""
    check_type("text", text, str, "字符串")
    return _NUMBER.sub(token, to_halfwidth(text))


def english_spans(text):
    """中文文本里英文单词的 [start, end) 区间列表，例如 '我用iPhone' -> [(2, 8)]。

    #NUM# 记号里的字母 NUM 不是单词，不算在内（数字归一化之后的文本也能直接用）。
    """
    check_type("text", text, str, "字符串")
    return [m.span() for m in _ENGLISH.finditer(text)
            if text[max(m.start() - 1, 0):m.end() + 1] != NUM_TOKEN]


def tag_words(text):
    """用 jieba.posseg 切词并标词性（不用 HMM 猜新词）：返回 [(词, 词性), ...]，不在 stderr 上打印加载提示。

    ERNIE 的知识掩码（objectives.KnowledgeMasking）和第 10 章都用它，与人民日报的 (词, 词性) 列表同一格式。
    """
    import logging

    import jieba
    import jieba.posseg

    check_type("text", text, str, "字符串")
    jieba.setLogLevel(logging.WARNING)                   # 不要“Building prefix dict…”之类的提示
    return [(w.word, w.flag) for w in jieba.posseg.cut(text, HMM=False)]


def _split_num(text):
    """把文本切成字符列表，#NUM# 作为一个整体。"""
    parts = text.split(NUM_TOKEN)
    out = []
    for i, part in enumerate(parts):
        if i:
            out.append(NUM_TOKEN)
        out.extend(part)
    return out


class CharTokenizer:
    """字符级分词器：一个汉字（或字母、标点）一个 token。

    特殊 token 固定在表头：[PAD] [UNK] [CLS] [SEP] [MASK] #NUM#。
    """

    def __init__(self, tokens):
        check_type("tokens", tokens, (list, tuple), "字符列表")
        vocab = list(SPECIAL_TOKENS) + [t for t in tokens if t not in SPECIAL_TOKENS]
        if len(set(vocab)) != len(vocab):
            raise ValueError("参数 tokens 含有重复的字符")
        self.itos = vocab
        self.stoi = {t: i for i, t in enumerate(vocab)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id, self.num_id = range(6)

    @classmethod
    def from_texts(cls, texts, min_freq=1, max_size=None):
        """统计 texts 里的字符，保留出现不少于 min_freq 次的（最多 max_size 个，按频数）。"""
        check_type("texts", texts, (list, tuple), "字符串列表")
        check_int("min_freq", min_freq, minimum=1)
        if max_size is not None:
            check_int("max_size", max_size, minimum=1)
        counts = Counter()
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"参数 texts 的第 {i} 项应为字符串，收到 {type(t).__name__}")
            counts.update(_split_num(t))
        kept = [c for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_freq]
        return cls(kept[:max_size] if max_size else kept)

    def __len__(self):
        return len(self.itos)

    @property
    def special_ids(self):
        return list(range(len(SPECIAL_TOKENS)))

    def tokenize(self, text):
        check_type("text", text, str, "字符串")
        return _split_num(text)

    def encode(self, text, add_special=False):
        """文本 -> id 列表；add_special=True 时两端加 [CLS] 和 [SEP]。"""
        ids = [self.stoi.get(c, self.unk_id) for c in self.tokenize(text)]
        return [self.cls_id] + ids + [self.sep_id] if add_special else ids

    def decode(self, ids, skip_special=False):
        """id 列表 -> 文本。"""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        check_type("ids", ids, (list, tuple), "整数列表")
        out = []
        for i in ids:
            check_int("ids 中的元素", i, minimum=0, maximum=len(self) - 1)
            if skip_special and i in (self.pad_id, self.cls_id, self.sep_id):
                continue
            out.append(self.itos[i])
        return "".join(out)

    def save(self, path):
        Path(path).write_text(json.dumps({"tokens": self.itos}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path):
        tokens = json.loads(Path(path).read_text(encoding="utf-8"))["tokens"]
        if tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise ValueError(f"参数 path 指向的文件不是 CharTokenizer 词表：{path}")
        return cls(tokens[len(SPECIAL_TOKENS):])

    def __repr__(self):
        return f"CharTokenizer(字表大小={len(self)})"
