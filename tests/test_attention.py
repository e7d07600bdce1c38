"""注意力：与 torch 的参考实现逐位相同（float64，约 1e-9），以及错误输入给出中文报错。"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lmcourse.models.attention import (SCORE_KINDS, AttentionPooling, MultiHeadAttention, Score, attention,
                                       causal_mask, local_mask, masked_softmax, scaled_dot_product_attention, score)

TOL = 1e-9
D64 = torch.float64


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D64)


def torch_mha(E=16, H=4, seed=0, **kwargs):
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(E, H, batch_first=True, **kwargs).double().eval()
    with torch.no_grad():  # 偏置默认是 0：换成随机数，才能检验偏置也对上了
        for p in ref.parameters():
            if p.dim() == 1:
                p.normal_()
    return ref


# ---------- 缩放点积注意力 ----------
@pytest.mark.parametrize("shape_q,shape_k", [((2, 5, 8), (2, 7, 8)), ((2, 3, 6, 4), (2, 3, 6, 4)), ((5, 8), (9, 8))])
def test_sdpa_matches_torch(shape_q, shape_k):
    q, k = rand(*shape_q, seed=1), rand(*shape_k, seed=2)
    v = rand(*shape_k[:-1], 3, seed=3)
    out, w = scaled_dot_product_attention(q, k, v)
    assert (out - F.scaled_dot_product_attention(q, k, v)).abs().max() < TOL
    want_w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), -1)
    assert (w - want_w).abs().max() < TOL
    assert torch.allclose(w.sum(-1), torch.ones((), dtype=D64))


def test_sdpa_masks_follow_true_means_blocked():
    q, k, v = rand(2, 5, 8, seed=1), rand(2, 7, 8, seed=2), rand(2, 7, 4, seed=3)
    mask = torch.rand(2, 5, 7, generator=torch.Generator().manual_seed(4)) < 0.4
    mask[:, :, 0] = False
    out, w = scaled_dot_product_attention(q, k, v, mask)
    # torch.nn.functional 的布尔掩码 True 表示"参与"，与这里相反
    assert (out - F.scaled_dot_product_attention(q, k, v, attn_mask=~mask)).abs().max() < TOL
    assert (w[mask] == 0).all()
    # 浮点掩码：-inf 表示不许看，结果与布尔掩码相同
    fmask = torch.zeros(mask.shape, dtype=D64).masked_fill(mask, float("-inf"))
    out_f, w_f = scaled_dot_product_attention(q, k, v, fmask)
    assert (out_f - out).abs().max() < TOL and (w_f - w).abs().max() < TOL


def test_sdpa_causal_and_fully_masked_rows():
    x = rand(1, 6, 4)
    out, w = scaled_dot_product_attention(x, x, x, causal_mask(6))
    ref = F.scaled_dot_product_attention(x, x, x, is_causal=True)
    assert (out - ref).abs().max() < TOL
    assert (w.triu(1) == 0).all() and w[0, 0, 0] == 1
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[2] = True  # 第 2 行一个 key 也不许看：权重全 0、输出全 0，不是 NaN
    out, w = scaled_dot_product_attention(x, x, x, mask)
    assert not out.isnan().any() and (w[0, 2] == 0).all() and (out[0, 2] == 0).all()
    assert (out - F.scaled_dot_product_attention(x, x, x, attn_mask=~mask)).abs().max() < TOL


def test_sdpa_gradients_are_finite_with_dead_rows():
    x = rand(1, 4, 4).requires_grad_()
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0] = True
    scaled_dot_product_attention(x, x, x, mask)[0].sum().backward()
    assert torch.isfinite(x.grad).all()


def test_sdpa_dropout_only_when_asked():
    x = rand(1, 5, 4)
    torch.manual_seed(0)
    _, w = scaled_dot_product_attention(x, x, x, dropout_p=0.5)
    assert (w == 0).any()
    assert (scaled_dot_product_attention(x, x, x)[1] > 0).all()


# ---------- 打分函数 ----------
def test_score_kinds_by_hand():
    q, k = rand(3, 4, seed=1), rand(5, 4, seed=2)
    assert (score(q, k, "dot") - q @ k.T).abs().max() < TOL
    assert (score(q, k, "scaled_dot") - q @ k.T / 2).abs().max() < TOL
    W = rand(4, 4, seed=3)
    assert (score(q, k, "general", weight=W) - q @ W @ k.T).abs().max() < TOL
    wq, wk, v = rand(6, 4, seed=4), rand(6, 4, seed=5), rand(6, seed=6)
    s = score(q, k, "additive", w_q=wq, w_k=wk, v=v)
    # 加性打分 = 拼接式 vᵀ tanh(W [q; k])，W = [W_q, W_k]
    Wcat = torch.cat([wq, wk], 1)
    want = torch.stack([torch.stack([v @ torch.tanh(Wcat @ torch.cat([qi, kj])) for kj in k]) for qi in q])
    assert s.shape == (3, 5) and (s - want).abs().max() < TOL


def test_score_module_and_attention_shapes():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 6), torch.randn(2, 7, 5), torch.randn(2, 7, 2)
    for kind in ("general", "additive"):
        s = Score(kind, 6, 5, hidden_dim=4)(q, k)
        assert s.shape == (2, 3, 7)
    out, w = attention(q[..., :5], k, v, kind="scaled_dot", temperature=0.5)
    assert out.shape == (2, 3, 2) and torch.allclose(w.sum(-1), torch.ones(2, 3))
    assert sum(p.numel() for p in Score("dot", 4).parameters()) == 0
    assert sum(p.numel() for p in Score("general", 4, 6).parameters()) == 24
    assert sum(p.numel() for p in Score("additive", 4, 6, hidden_dim=3).parameters()) == 3 * 4 + 3 * 6 + 3


def test_temperature_sharpens_and_flattens():
    s = torch.tensor([[1.0, 2.0, 3.0]])
    cold, warm, hot = (masked_softmax(s, temperature=t) for t in (0.05, 1.0, 100.0))
    assert cold[0, 2] > 0.999 and warm[0, 2] < 0.7 and (hot - 1 / 3).abs().max() < 0.01


def test_local_mask():
    m = local_mask(torch.tensor([0, 3]), 6, 1)
    assert m.tolist() == [[False, False, True, True, True, True], [True, True, False, False, False, True]]


def test_attention_pooling():
    torch.manual_seed(0)
    pool = AttentionPooling(8, hidden_dim=5, num_queries=3)
    x = torch.randn(2, 6, 8)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[1, 4:] = True
    out, w = pool(x, pad)
    assert out.shape == (2, 24) and w.shape == (2, 3, 6)
    assert (w[1, :, 4:] == 0).all() and torch.allclose(w.sum(-1), torch.ones(2, 3))
    assert torch.allclose(out[1, :8], w[1, 0, :4] @ x[1, :4])


# ---------- 多头注意力 ----------
@pytest.mark.parametrize("H", [1, 2, 4])
def test_mha_self_attention_matches_torch(H):
    ref = torch_mha(16, H)
    mha = MultiHeadAttention.from_torch(ref).eval()
    x = rand(3, 5, 16)
    a, b = ref(x, x, x), mha(x, x, x)
    assert (a[0] - b[0]).abs().max() < TOL and (a[1] - b[1]).abs().max() < TOL
    a = ref(x, x, x, average_attn_weights=False)[1]
    b = mha(x, x, x, average_attn_weights=False)[1]
    assert b.shape == (3, H, 5, 5) and (a - b).abs().max() < TOL


def test_mha_cross_attention_with_masks_matches_torch():
    ref = torch_mha(16, 4, seed=1)
    mha = MultiHeadAttention.from_torch(ref).eval()
    q, kv = rand(2, 4, 16, seed=1), rand(2, 9, 16, seed=2)
    v = rand(2, 9, 16, seed=3)
    kpm = torch.zeros(2, 9, dtype=torch.bool)
    kpm[1, 6:] = True  # 第 2 个序列后 3 个是填充
    am = torch.rand(4, 9, generator=torch.Generator().manual_seed(5)) < 0.3
    am[:, 0] = False
    for kwargs in ({"key_padding_mask": kpm}, {"attn_mask": am}, {"key_padding_mask": kpm, "attn_mask": am}):
        a, b = ref(q, kv, v, **kwargs), mha(q, kv, v, **kwargs)
        assert (a[0] - b[0]).abs().max() < TOL and (a[1] - b[1]).abs().max() < TOL
    assert (mha(q, kv, v, key_padding_mask=kpm)[1][1, :, 6:] == 0).all()


def test_mha_causal_and_per_batch_head_masks_match_torch():
    ref = torch_mha(12, 3, seed=2)
    mha = MultiHeadAttention.from_torch(ref).eval()
    x = rand(2, 6, 12, seed=4)
    causal = causal_mask(6)
    kpm = torch.zeros(2, 6, dtype=torch.bool)
    kpm[0, 5] = True
    a = ref(x, x, x, attn_mask=causal, key_padding_mask=kpm)
    b = mha(x, x, x, attn_mask=causal, key_padding_mask=kpm)
    assert (a[0] - b[0]).abs().max() < TOL and (a[1] - b[1]).abs().max() < TOL
    fcausal = torch.zeros(6, 6, dtype=D64).masked_fill(causal, float("-inf"))  # 浮点掩码
    b2 = mha(x, x, x, attn_mask=fcausal)
    assert (ref(x, x, x, attn_mask=fcausal)[0] - b2[0]).abs().max() < TOL
    m3 = torch.rand(2 * 3, 6, 6, generator=torch.Generator().manual_seed(6)) < 0.3
    m3[..., 0] = False
    a, b = ref(x, x, x, attn_mask=m3, average_attn_weights=False), mha(x, x, x, attn_mask=m3, average_attn_weights=False)
    assert (a[0] - b[0]).abs().max() < TOL and (a[1] - b[1]).abs().max() < TOL


def test_mha_without_bias_and_need_weights_false():
    ref = torch_mha(8, 2, bias=False)
    mha = MultiHeadAttention.from_torch(ref).eval()
    assert mha.in_proj_bias is None and mha.out_proj.bias is None
    x = rand(2, 3, 8)
    out, w = mha(x, x, x, need_weights=False)
    assert w is None and (out - ref(x, x, x)[0]).abs().max() < TOL


def test_mha_parameter_layout_and_count():
    mha = MultiHeadAttention(32, 4)
    names = [n for n, _ in mha.named_parameters()]
    assert names == [n for n, _ in nn.MultiheadAttention(32, 4, batch_first=True).named_parameters()]
    counts = {h: sum(p.numel() for p in MultiHeadAttention(32, h).parameters()) for h in (1, 4, 8)}
    assert set(counts.values()) == {4 * 32 * 32 + 4 * 32}  # 与头数、序列长度都无关


def test_mha_from_torch_copies_not_shares():
    ref = torch_mha(8, 2)
    mha = MultiHeadAttention.from_torch(ref)
    with torch.no_grad():
        mha.in_proj_weight.zero_()
    assert ref.in_proj_weight.abs().sum() > 0
    assert mha.in_proj_weight.dtype == D64


def test_mha_dropout_in_training_only():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(1, 6, 8)
    mha.eval()
    a, b = mha(x, x, x)[0], mha(x, x, x)[0]
    assert torch.equal(a, b)
    mha.train()
    assert not torch.equal(mha(x, x, x)[0], a)


def test_self_attention_is_permutation_equivariant():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).double().eval()
    x = rand(1, 7, 8)
    perm = torch.tensor([3, 0, 6, 1, 5, 2, 4])
    out, _ = mha(x, x, x)
    out_p, _ = mha(x[:, perm], x[:, perm], x[:, perm])
    assert (out_p - out[:, perm]).abs().max() < TOL


# ---------- 错误输入 ----------
def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_heads=3.*embed_dim=16"):
        MultiHeadAttention(16, 3)
    with pytest.raises(TypeError, match="embed_dim"):
        MultiHeadAttention(16.0, 4)
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(16, 4, dropout=1.5)
    with pytest.raises(ValueError, match="kind"):
        Score("cosine", 4)
    with pytest.raises(ValueError, match="query_dim"):
        Score("dot", 4, 5)
    with pytest.raises(TypeError, match="ref"):
        MultiHeadAttention.from_torch(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="batch_first"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2))
    with pytest.raises(ValueError, match="kdim"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, kdim=4, vdim=4, batch_first=True))


def test_bad_forward_inputs():
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match="query.*三维.*\\(5, 8\\)"):
        mha(x[0], x[0], x[0])  # 二维输入（没有批维）
    with pytest.raises(ValueError, match="key.*embed_dim=8.*6"):
        mha(x, torch.randn(2, 5, 6), x)
    with pytest.raises(ValueError, match="key.*value.*长度"):
        mha(x, x, torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="批大小"):
        mha(x, torch.randn(3, 5, 8), torch.randn(3, 5, 8))
    with pytest.raises(TypeError, match="query"):
        mha(x.numpy(), x, x)
    with pytest.raises(ValueError, match="key_padding_mask.*\\(2, 5\\).*\\(2, 4\\)"):
        mha(x, x, x, key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="attn_mask.*\\(5, 5\\).*\\(4, 5\\)"):
        mha(x, x, x, attn_mask=torch.zeros(4, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="attn_mask.*torch.int64"):
        mha(x, x, x, attn_mask=torch.zeros(5, 5, dtype=torch.long))


def test_bad_functional_inputs():
    q = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="q.*k.*最后一维.*4.*5"):
        scaled_dot_product_attention(q, torch.randn(2, 6, 5), torch.randn(2, 6, 5))
    with pytest.raises(ValueError, match="k.*v.*长度.*6.*7"):
        scaled_dot_product_attention(q, torch.randn(2, 6, 4), torch.randn(2, 7, 4))
    with pytest.raises(ValueError, match="q.*维张量"):
        scaled_dot_product_attention(torch.randn(4), torch.randn(6, 4), torch.randn(6, 4))
    with pytest.raises(ValueError, match="mask.*不能广播"):
        scaled_dot_product_attention(q, q, q, torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask.*torch.int64"):
        masked_softmax(torch.randn(3, 3), torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        masked_softmax(torch.randn(3, 3), temperature=0)
    with pytest.raises(ValueError, match="kind.*'cosine'"):
        score(q, q, "cosine")
    with pytest.raises(ValueError, match="weight.*\\(4, 4\\).*\\(3, 3\\)"):
        score(q, q, "general", weight=torch.randn(3, 3))
    with pytest.raises(TypeError, match="w_q"):
        score(q, q, "additive")
    with pytest.raises(ValueError, match="window"):
        local_mask(torch.tensor([1]), 5, -1)
    with pytest.raises(ValueError, match="length"):
        causal_mask(0)
    assert set(SCORE_KINDS) == {"dot", "scaled_dot", "general", "additive"}


def test_additive_score_with_projected_keys_is_the_same():
    """事先算好的 W_k k（Bahdanau 训练时每句只算一次）给出同样的分数；别的打分不能用 project_keys。"""
    torch.manual_seed(0)
    s = Score("additive", 4, 6, hidden_dim=5).double()
    q, k = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 7, 6, dtype=torch.float64)
    assert torch.allclose(s(q, k, k_proj=s.project_keys(k)), s(q, k), atol=1e-12)
    with pytest.raises(ValueError, match="additive"):
        Score("general", 4, 6).project_keys(k)
