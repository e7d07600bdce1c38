import pytest
import torch

from lmcourse.data import synthetic as syn

CASES = {
    0: "零", 1: "一", 7: "七", 10: "十", 15: "十五", 20: "二十", 99: "九十九",
    100: "一百", 101: "一百零一", 110: "一百一十", 111: "一百一十一", 200: "二百",
    1000: "一千", 1001: "一千零一", 1010: "一千零一十", 1100: "一千一百", 2024: "二千零二十四",
    2000: "二千", 9999: "九千九百九十九",
    10000: "一万", 10001: "一万零一", 10010: "一万零一十", 10100: "一万零一百", 11000: "一万一千",
    15000: "一万五千", 100000: "十万", 100100: "十万零一百", 110000: "十一万", 123456: "十二万三千四百五十六",
    1000010: "一百万零一十", 1010000: "一百零一万", 1001000: "一百万一千", 10000001: "一千万零一",
    10200304: "一千零二十万零三百零四", 99999999: "九千九百九十九万九千九百九十九",
    100000000: "一亿", 100000001: "一亿零一", 100001000: "一亿零一千", 100010000: "一亿零一万",
    120000300: "一亿二千万零三百", 1000000000: "十亿", 1500000000: "十五亿",
    1000000001: "十亿零一", 2004743910: "二十亿零四百七十四万三千九百一十",
    100000000000: "一千亿", 999999999999: "九千九百九十九亿九千九百九十九万九千九百九十九",
}


@pytest.mark.parametrize("n, text", sorted(CASES.items()))
def test_number_to_chinese(n, text):
    assert syn.number_to_chinese(n) == text


def test_reading_invariants():
    for n in range(0, 200000, 7):
        t = syn.number_to_chinese(n)
        assert "零零" not in t and not t.endswith("零") or n == 0
        assert "两" not in t and not t.startswith("一十")


@pytest.mark.parametrize("bad, err", [(-1, ValueError), (10 ** 12, ValueError), (1.5, TypeError),
                                      ("12", TypeError), (True, TypeError)])
def test_number_to_chinese_rejects(bad, err):
    with pytest.raises(err, match="n"):
        syn.number_to_chinese(bad)


def test_splits_deterministic_disjoint_and_long():
    pairs = {s: syn.number_pairs(s) for s in syn.SPLITS}
    for s, p in pairs.items():
        assert len(p) == syn.SIZES[s]
        assert p == syn.number_pairs(s)                      # 每次相同
        assert all(syn.number_to_chinese(int(a)) == b for a, b in p)
        assert len({a for a, _ in p}) == len(p)              # 集合内无重复
    sets = {s: {a for a, _ in p} for s, p in pairs.items()}
    for a in syn.SPLITS:
        for b in syn.SPLITS:
            if a < b:
                assert not sets[a] & sets[b], (a, b)
    train_max = max(len(a) for a in sets["train"])
    assert train_max == 8 and min(len(a) for a in sets["test_long"]) > train_max
    assert {len(a) for a in sets["test"]} <= set(range(1, 9))
    assert not any("亿" in b for _, b in pairs["train"])
    zeros = sum("零" in b for _, b in pairs["train"]) / len(pairs["train"])
    assert 0.3 < zeros < 0.7                                 # "零"足够常见
    assert syn.number_pairs("train", seed=1) != pairs["train"]


def test_number_pairs_rejects():
    with pytest.raises(ValueError, match="split"):
        syn.number_pairs("dev")
    with pytest.raises(TypeError, match="seed"):
        syn.number_pairs("train", seed="0")


def test_vocab_roundtrip_and_specials():
    src, tgt = syn.source_vocab(), syn.target_vocab()
    assert (src.pad_id, src.bos_id, src.eos_id) == (0, 1, 2)
    assert len(src) == 13 and len(tgt) == 18
    text = "一亿二千万零三百"
    ids = tgt.encode(text)
    assert min(ids) >= 3 and tgt.decode(ids) == text
    assert tgt.decode([tgt.bos_id] + ids + [tgt.eos_id, 5, 6]) == text    # 遇 <eos> 停
    assert tgt.decode([0, 0]) == ""
    with pytest.raises(ValueError, match="text"):
        src.encode("12a")
    with pytest.raises(ValueError, match="ids"):
        tgt.decode([99])
    with pytest.raises(TypeError, match="text"):
        src.encode(12)


def test_make_batch_shapes_and_padding():
    pairs = [("5", "五"), ("2024", "二千零二十四"), ("10", "十")]
    src, lengths, tgt_in, tgt_out = syn.make_batch(pairs, syn.SRC_VOCAB, syn.TGT_VOCAB)
    assert src.shape == (3, 4) and src.dtype == torch.long
    assert lengths.tolist() == [1, 4, 2]
    assert tgt_in.shape == tgt_out.shape == (3, 7)
    assert src[0].tolist() == [syn.SRC_VOCAB.stoi["5"], 0, 0, 0]
    assert (tgt_in[:, 0] == 1).all()
    assert tgt_out[0].tolist()[:3] == [syn.TGT_VOCAB.stoi["五"], 2, 0]
    assert tgt_in[1, 1:].tolist() == tgt_out[1, :-1].tolist()          # 错开一位
    assert syn.TGT_VOCAB.decode(tgt_out[1]) == "二千零二十四"
    assert ((src != 0).sum(1) == lengths).all()
    with pytest.raises(ValueError, match="pairs"):
        syn.make_batch([])


def test_exact_match():
    assert syn.exact_match(["一", "二"], ["一", "三"]) == 0.5
    with pytest.raises(ValueError, match="predictions"):
        syn.exact_match(["一"], ["一", "二"])
