import pytest
import torch

from lmcourse.masking import IGNORE_INDEX, mask_tokens, whole_word_mask
from lmcourse.text import CharTokenizer, normalize_numbers


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
