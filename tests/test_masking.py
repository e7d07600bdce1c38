import pytest
import torch

from lmcourse import data, objectives, pretrain
from lmcourse.masking import IGNORE_INDEX, knowledge_spans, mask_tokens, span_mask, whole_word_mask
from lmcourse.text import CharTokenizer, normalize_numbers, pad_batch


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_texts(["我们今天用iPhone看BERT的论文很开心", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"])


def test_mlm_statistics_15_80_10_10(tok):
    g = torch.Generator().manual_seed(0)
    body = torch.randint(6, len(tok), (400, 128), generator=g)
    ids = torch.cat([torch.full((400, 1), tok.cls_id), body, torch.full((400, 1), tok.sep_id)], dim=1)
    inputs, labels = mask_tokens(ids, tok, generator=g)
    chosen = labels != IGNORE_INDEX
    n = chosen.sum().item()
    assert abs(n / body.numel() - 0.15) < 0.005  # 选中比例（约 5 万个 token，标准误约 0.0007）
    assert not chosen[:, 0].any() and not chosen[:, -1].any()  # 特殊 token 从不选
    masked = (inputs == tok.mask_id) & chosen
    same = (inputs == ids) & chosen
    other = chosen & ~masked & ~same
    assert abs(masked.sum().item() / n - 0.8) < 0.01
    # 随机替换有 1/V 的机会恰好换回原字，所以"不变"略多于 10%
    assert abs(same.sum().item() / n - 0.1) < 0.01 and abs(other.sum().item() / n - 0.1) < 0.01
    assert (labels[chosen] == ids[chosen]).all()
    assert (inputs[~chosen] == ids[~chosen]).all()
    assert (inputs[other] >= 6).all()  # 随机替换只换成普通字


def test_mlm_is_seeded(tok):
    ids = torch.randint(6, len(tok), (4, 20), generator=torch.Generator().manual_seed(1))
    a = mask_tokens(ids, tok, generator=torch.Generator().manual_seed(5))
    b = mask_tokens(ids, tok, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_whole_word_masking_masks_english_words_together(tok):
    text = "我们今天用iPhone看BERT的论文"
    seen_partial = False
    for seed in range(200):
        inputs, labels = whole_word_mask(text, tok, p=0.3, generator=torch.Generator().manual_seed(seed))
        chosen = (labels != IGNORE_INDEX).tolist()
        for s, e in ((5, 11), (12, 16)):  # iPhone、BERT
            span = chosen[s:e]
            seen_partial |= any(span) and not all(span)
    assert not seen_partial


def test_whole_word_masking_keeps_num_token_whole(tok):
    text = normalize_numbers("我们用了3年")
    inputs, labels = whole_word_mask(text, tok, p=1.0, generator=torch.Generator().manual_seed(0))
    assert len(labels) == len(tok.tokenize(text)) == 6
    assert labels[4] == tok.num_id  # #NUM# 可以被选中，要预测的就是"这里是个数"
    ids = torch.tensor([tok.cls_id, tok.num_id, tok.pad_id, tok.unk_id, tok.sep_id])
    _, labels = mask_tokens(ids, tok, p=1.0)
    assert labels.tolist() == [IGNORE_INDEX, tok.num_id, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]


def test_masking_bad_input(tok):
    with pytest.raises(TypeError, match="input_ids"):
        mask_tokens([1, 2, 3], tok)
    with pytest.raises(TypeError, match="input_ids"):
        mask_tokens(torch.tensor([1.0, 2.0]), tok)
    with pytest.raises(ValueError, match="p"):
        mask_tokens(torch.tensor([6, 7]), tok, p=1.5)
    with pytest.raises(ValueError, match="input_ids"):
        mask_tokens(torch.tensor([6, 10_000]), tok)
    with pytest.raises(TypeError, match="tokenizer"):
        mask_tokens(torch.tensor([6, 7]), "tok")
    with pytest.raises(TypeError, match="text"):
        whole_word_mask(123, tok)


def _span_batch(n=400, T=40):
    tok = data.bert_tokenizer()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(len(tok.special_ids), len(tok), (n, T), generator=g)
    ids[:, 0], ids[:, -1] = tok.cls_id, tok.sep_id
    spans = [[(1, 4), (6, 8), (20, 25)] for _ in range(n)]
    return tok, ids, spans


def test_span_mask_statistics():
    tok, ids, spans = _span_batch()
    inputs, labels = span_mask(ids, spans, tok, p=0.3, generator=torch.Generator().manual_seed(1))
    chosen = labels != -100
    assert not chosen[:, [0, -1]].any()                                  # 特殊 token 从不选
    assert 0.27 < chosen[:, 1:-1].float().mean() < 0.33                  # 约 p 的普通 token 被预测
    for s, e in spans[0]:                                                # 一段要么整段选中，要么整段不选
        block = chosen[:, s:e]
        assert ((block.all(1)) | (~block.any(1))).all()
        assert 0.25 < block.all(1).float().mean() < 0.35
    assert torch.equal(labels[chosen], ids[chosen])
    whole = chosen[:, 20:25].all(1)                                      # 选中的段：整段同一个去向
    masked = (inputs[:, 20:25] == tok.mask_id)
    assert ((masked.all(1)) | (~masked.any(1)))[whole].all()
    share = masked.all(1)[whole].float().mean()
    same = (inputs[:, 20:25] == ids[:, 20:25]).all(1)[whole].float().mean()
    assert 0.7 < share < 0.9 and 0.03 < same < 0.2                       # 80% [MASK]，10% 不变（其余 10% 随机字）
    kept = (inputs[:, 20:25] == ids[:, 20:25])[whole & ~masked.any(1)]      # 选中、没换成 [MASK] 的段
    mixed = (kept.any(1) & ~kept.all(1)).float().mean()                    # 有的字变了、有的没变
    assert mixed < 0.01                                                  # 只剩随机字碰巧抽到原字的情形（约 5/V）
    single = chosen[:, 9:19]                                             # 段外的 token 各自独立
    assert 0.27 < single.float().mean() < 0.33
    again = span_mask(ids, spans, tok, p=0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], labels)


def test_span_mask_rejects_bad_spans():
    tok, ids, _ = _span_batch(n=2)
    for spans, word in (([[(1, 3)]], "行"), ([[(1, 3)], [(30, 41)]], "超出"), ([[(1, 3)], [(2, 5), (4, 6)]], "重叠"),
                        ([[(3, 3)], []], "end > start"), ([[(0, 2)], []], "特殊")):
        with pytest.raises(ValueError, match=word):
            span_mask(ids, spans, tok)


def test_knowledge_spans_from_the_corpus():
    words = [("江", "nr"), ("泽民", "nr"), ("在", "p"), ("北京", "ns"), ("会见", "v"), ("了", "u"), ("客人", "n")]
    assert knowledge_spans(words, "entity") == [(0, 3), (4, 6)]         # 姓和名合成一个人名
    assert knowledge_spans(words, "phrase") == [(1, 3), (4, 6), (6, 8), (9, 11)]
    with pytest.raises(ValueError, match="level"):
        knowledge_spans(words, "word")


def test_ernie_objective_moves_through_three_levels():
    tok = data.bert_tokenizer()
    obj = objectives.get("ernie", tokenizer=tok, p=0.4)
    assert obj.level(5) == "char"                                        # 没给总样本数：与 BERT 相同，逐字遮
    obj = objectives.get("ernie", tokenizer=tok, p=0.4, total_examples=300)
    assert [obj.level(e) for e in (0, 99, 100, 199, 200, 299)] == ["char", "char", "phrase", "phrase", "entity", "entity"]
    mlm = objectives.get("mlm", tokenizer=tok, p=0.4)
    packed = pretrain.pack(pretrain.corpus_lines("news", "valid"), tok, 63, True)
    chunks = torch.tensor([next(packed) for _ in range(16)])                # (16, 63) 原文，没有遮过
    assert all(torch.equal(a, b) for a, b in zip(obj.make_batch(chunks, list(range(16)), 0).values(),
                                                 mlm.make_batch(chunks, list(range(16)), 0).values()))   # 第一段与 BERT 全同
    for start in (100, 200):                                             # 短语级、实体级：约 p 的字被预测
        b = obj.make_batch(chunks, list(range(start, start + 16)), 0)
        assert 0.3 < (b["mlm_labels"] != -100).float().mean() < 0.5


def test_span_mask_without_spans_is_mask_tokens():
    """80/10/10 只写在 _replace 一处：没有任何段时，span_mask 与 mask_tokens 抽到同样的随机数、给出同样的结果。"""
    tok = data.bert_tokenizer()
    texts = data.peoples_daily_texts("valid")[:16]
    ids, _ = pad_batch([[tok.cls_id] + tok.encode(t)[:60] + [tok.sep_id] for t in texts], tok.pad_id)
    a = mask_tokens(ids, tok, p=0.3, generator=torch.Generator().manual_seed(5))
    b = span_mask(ids, [[] for _ in texts], tok, p=0.3, generator=torch.Generator().manual_seed(5))
    assert (a[1] != IGNORE_INDEX).sum() > 100
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
