import pytest

from lmcourse.text import NUM_TOKEN, SPECIAL_TOKENS, CharTokenizer, english_spans, normalize_numbers, to_halfwidth


def test_tokenizer_roundtrip_and_specials(tmp_path):
    tok = CharTokenizer.from_texts(["我爱北京", "北京欢迎你"])
    assert tok.itos[:6] == SPECIAL_TOKENS
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert len(tok) == 6 + len(set("我爱北京欢迎你"))
    ids = tok.encode("北京欢迎我")
    assert tok.decode(ids) == "北京欢迎我"
    assert tok.encode("猫") == [tok.unk_id]
    assert tok.encode("你", add_special=True) == [tok.cls_id, tok.stoi["你"], tok.sep_id]
    tok.save(tmp_path / "v.json")
    again = CharTokenizer.load(tmp_path / "v.json")
    assert again.itos == tok.itos


def test_tokenizer_frequency_order_and_min_freq():
    tok = CharTokenizer.from_texts(["甲甲甲乙乙丙"], min_freq=2)
    assert tok.itos[6:] == ["甲", "乙"]
    assert CharTokenizer.from_texts(["甲甲乙"], max_size=1).itos[6:] == ["甲"]


def test_num_token_is_one_token():
    tok = CharTokenizer.from_texts([normalize_numbers("共 1998 人")])
    assert tok.tokenize(normalize_numbers("共 12 人")) == ["共", " ", NUM_TOKEN, " ", "人"]
    assert tok.encode(NUM_TOKEN) == [tok.num_id]


def test_normalize_numbers():
    assert normalize_numbers("１９９８年增长3.5%") == "#NUM#年增长#NUM#%"
    assert normalize_numbers("没有数字") == "没有数字"
    assert to_halfwidth("ＡＢ１２，") == "AB12，"


def test_english_spans():
    text = "我用iPhone和Mac Book看BERT"
    spans = english_spans(text)
    assert [text[s:e] for s, e in spans] == ["iPhone", "Mac", "Book", "BERT"]
    assert english_spans("全是中文") == []
    text = normalize_numbers("XP SP2和SP3，NUM")                  # #NUM# 里的 NUM 不是单词；单独写的 NUM 是
    assert [text[s:e] for s, e in english_spans(text)] == ["XP", "SP", "SP", "NUM"]


@pytest.mark.parametrize("call", [
    lambda t: t.encode(123),
    lambda t: t.decode("abc"),
    lambda t: CharTokenizer.from_texts("不是列表"),
    lambda t: CharTokenizer.from_texts(["好", 3]),
    lambda t: normalize_numbers(None),
    lambda t: english_spans(b"bytes"),
])
def test_type_errors_are_chinese(call):
    tok = CharTokenizer.from_texts(["好"])
    with pytest.raises(TypeError, match="参数"):
        call(tok)


def test_value_errors():
    tok = CharTokenizer.from_texts(["好"])
    with pytest.raises(ValueError, match="ids"):
        tok.decode([999])
    with pytest.raises(ValueError, match="min_freq"):
        CharTokenizer.from_texts(["好"], min_freq=0)
    with pytest.raises(TypeError, match="encode|text"):
        tok.encode(123)


def test_pad_batch():
    import torch

    from lmcourse.text import pad_batch

    ids, lengths = pad_batch([[5, 6, 7], [8], []], pad_id=0)
    assert torch.equal(ids, torch.tensor([[5, 6, 7], [8, 0, 0], [0, 0, 0]])) and lengths.tolist() == [3, 1, 0]
    assert ids.dtype == torch.long
    with pytest.raises(ValueError, match="sequences"):
        pad_batch([], 0)
    with pytest.raises(TypeError, match="sequences"):
        pad_batch("abc", 0)
    with pytest.raises(ValueError, match="pad_id"):
        pad_batch([[1]], -1)


def test_tag_words_is_quiet_and_tags_entities(capfd):
    from lmcourse.text import tag_words

    words = tag_words("国务院总理李鹏在北京")
    assert "".join(w for w, _ in words) == "国务院总理李鹏在北京"
    assert ("北京", "ns") in words
    assert "prefix dict" not in capfd.readouterr().err
    with pytest.raises(TypeError, match="text"):
        tag_words(["北京"])
