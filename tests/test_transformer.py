"""Transformer：编码器层、解码器层与 torch 逐位相同（float64，约 1e-9）；位置编码的公式与相对位置性质；
编码器—解码器的因果性与贪心解码；错误输入给出中文报错。"""
import math

import pytest
import torch
from torch import nn

from lmcourse.models.attention import MultiHeadAttention, causal_mask
from lmcourse.models.transformer import (Seq2SeqTransformer, Seq2SeqTransformerConfig, TransformerDecoderLayer,
                                         TransformerEncoderLayer, shift_matrix, sinusoidal_encoding)

TOL = 1e-9
D64 = torch.float64


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D64)


def randomize(module, seed=0):
    """把偏置和 LayerNorm 的参数也换成随机数（默认是 0 和 1），才能检验它们也对上了。"""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5 + (1.0 if p.abs().sum() == p.numel() else 0))
    return module


def masks(B=3, T=7):
    pad = torch.zeros(B, T, dtype=torch.bool)
    pad[1, 5:] = True
    pad[2, 3:] = True   # 右侧填充：与因果掩码合起来也不会有整行都不许看的 query
    return pad, causal_mask(T)


# ---------- 编码器层 / 解码器层与 torch 相同 ----------
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch(norm_first, activation):
    torch.manual_seed(0)
    ref = randomize(nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, activation=activation, batch_first=True,
                                               norm_first=norm_first).double()).eval()
    ours = TransformerEncoderLayer.from_torch(ref)
    assert isinstance(ours.self_attn, MultiHeadAttention) and not ours.training
    assert ours.state_dict().keys() == ref.state_dict().keys()
    x = rand(3, 7, 16)
    pad, causal = masks()
    for kwargs in ({}, {"src_key_padding_mask": pad}, {"src_mask": causal}, {"src_mask": causal, "src_key_padding_mask": pad}):
        want, got = ref(x, **kwargs), ours(x, **kwargs)   # 需要梯度：torch 不走快速路径
        assert (want - got).abs().max() < TOL, kwargs
    assert (ref(x, src_mask=causal) - ours(x, is_causal=True)).abs().max() < TOL


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    torch.manual_seed(1)
    ref = randomize(nn.TransformerDecoderLayer(16, 2, 24, batch_first=True, norm_first=norm_first).double(), 1).eval()
    ours = TransformerDecoderLayer.from_torch(ref).eval()
    assert ours.state_dict().keys() == ref.state_dict().keys()
    tgt, mem = rand(3, 7, 16, seed=1), rand(3, 5, 16, seed=2)
    pad, causal = masks()
    mem_pad = torch.zeros(3, 5, dtype=torch.bool)
    mem_pad[0, 3:] = True
    kwargs = dict(tgt_mask=causal, tgt_key_padding_mask=pad, memory_key_padding_mask=mem_pad)
    assert (ref(tgt, mem, **kwargs) - ours(tgt, mem, **kwargs)).abs().max() < TOL
    memory_mask = torch.zeros(7, 5, dtype=torch.bool)
    memory_mask[:, 4] = True
    assert (ref(tgt, mem, memory_mask=memory_mask) - ours(tgt, mem, memory_mask=memory_mask)).abs().max() < TOL
    with torch.no_grad():
        assert (ref(tgt, mem, **kwargs) - ours(tgt, mem, **kwargs)).abs().max() < TOL


def test_layers_in_train_mode_match_without_dropout():
    ref = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).double().train()
    ours = TransformerEncoderLayer.from_torch(ref).train()
    x = rand(2, 4, 8).requires_grad_()
    (ref(x) ** 2).sum().backward()
    g_ref = x.grad.clone()
    x.grad = None
    (ours(x) ** 2).sum().backward()
    assert (x.grad - g_ref).abs().max() < TOL


def test_need_weights_shapes_and_masks():
    enc = TransformerEncoderLayer(16, 4, 32, dropout=0.0).eval()
    x = torch.randn(3, 7, 16)
    pad, causal = masks()
    y, w = enc(x, src_mask=causal, src_key_padding_mask=pad, need_weights=True)
    assert y.shape == (3, 7, 16) and w.shape == (3, 4, 7, 7)
    assert torch.allclose(w.sum(-1), torch.ones(3, 4, 7))
    blocked = causal | pad[:, None, :]                         # (B, T, T)
    assert (w.masked_select(blocked[:, None].expand_as(w)) == 0).all()
    dec = TransformerDecoderLayer(16, 4, 32, dropout=0.0).eval()
    y, (ws, wc) = dec(x, torch.randn(3, 5, 16), tgt_is_causal=True, need_weights=True)
    assert ws.shape == (3, 4, 7, 7) and wc.shape == (3, 4, 7, 5)
    assert (ws[..., causal] == 0).all()


def test_layer_bad_arguments():
    with pytest.raises(ValueError, match="batch_first"):
        TransformerEncoderLayer(16, 4, batch_first=False)
    with pytest.raises(ValueError, match="num_heads=3"):
        TransformerEncoderLayer(16, 3)
    with pytest.raises(ValueError, match="activation"):
        TransformerDecoderLayer(16, 4, activation="tanh")
    with pytest.raises(ValueError, match="dropout"):
        TransformerEncoderLayer(16, 4, dropout=1.5)
    with pytest.raises(TypeError, match="d_model"):
        TransformerEncoderLayer(16.0, 4)
    enc, dec = TransformerEncoderLayer(16, 4), TransformerDecoderLayer(16, 4)
    with pytest.raises(ValueError, match="src.*\\(7, 16\\)"):
        enc(torch.randn(7, 16))
    with pytest.raises(ValueError, match="src.*\\(2, 7, 8\\)"):
        enc(torch.randn(2, 7, 8))
    with pytest.raises(TypeError, match="src"):
        enc([[1.0]])
    with pytest.raises(ValueError, match="key_padding_mask"):
        enc(torch.randn(2, 7, 16), src_key_padding_mask=torch.zeros(2, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="批大小"):
        dec(torch.randn(2, 7, 16), torch.randn(3, 5, 16))
    with pytest.raises(ValueError, match="memory"):
        dec(torch.randn(2, 7, 16), torch.randn(2, 5, 8))
    with pytest.raises(TypeError, match="ref"):
        TransformerEncoderLayer.from_torch(nn.TransformerDecoderLayer(16, 4, batch_first=True))
    with pytest.raises(ValueError, match="batch_first"):
        TransformerDecoderLayer.from_torch(nn.TransformerDecoderLayer(16, 4))


# ---------- 正弦位置编码 ----------
def test_sinusoidal_formula():
    pe = sinusoidal_encoding(50, 16).double()
    for pos in (0, 1, 7, 49):
        for i in range(8):
            angle = pos / 10000 ** (2 * i / 16)
            assert math.isclose(pe[pos, 2 * i].item(), math.sin(angle), abs_tol=1e-6)
            assert math.isclose(pe[pos, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-6)
    assert pe.shape == (50, 16) and sinusoidal_encoding(3, 4).dtype == torch.get_default_dtype()
    assert torch.equal(pe[0, 0::2], torch.zeros(8, dtype=D64)) and torch.equal(pe[0, 1::2], torch.ones(8, dtype=D64))
    assert pe.abs().max() <= 1


def test_sinusoidal_positions_are_unique():
    pe = sinusoidal_encoding(512, 64)
    d = torch.cdist(pe, pe) + torch.eye(512) * 10
    assert d.min() > 0.1   # 每个位置的编码都不同（“独一的纹理”）


@pytest.mark.parametrize("bad,exc", [((0, 8), ValueError), ((-3, 8), ValueError), ((8, 0), ValueError),
                                     ((8, 7), ValueError), ((8.0, 8), TypeError), ((8, "8"), TypeError)])
def test_sinusoidal_errors(bad, exc):
    with pytest.raises(exc, match="max_len|d_model"):
        sinusoidal_encoding(*bad)


@pytest.mark.parametrize("k", [1, 3, 10, -4])
def test_relative_position_is_a_rotation(k):
    d = 32
    pe = sinusoidal_encoding(80, d, dtype=D64)
    m = shift_matrix(k, d, dtype=D64)
    assert (m @ m.T - torch.eye(d, dtype=D64)).abs().max() < 1e-12          # 正交：旋转
    assert torch.equal(m[2:, :2], torch.zeros(d - 2, 2, dtype=D64))         # 分块对角
    pos = torch.arange(max(0, -k), 80 - max(k, 0))
    assert (pe[pos + k] - pe[pos] @ m.T).abs().max() < 1e-9                 # PE(pos+k) = M_k PE(pos)，对每个 pos
    # 独立地按三角恒等式写出第 i 块
    w = 1 / 10000 ** (2 * 5 / d)
    block = torch.tensor([[math.cos(k * w), math.sin(k * w)], [-math.sin(k * w), math.cos(k * w)]], dtype=D64)
    assert (m[10:12, 10:12] - block).abs().max() < 1e-12


def test_shift_matrix_errors():
    with pytest.raises(ValueError, match="d_model"):
        shift_matrix(1, 7)
    with pytest.raises(TypeError, match="k"):
        shift_matrix(1.5, 8)


# ---------- 编码器—解码器 ----------
def small_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    cfg = Seq2SeqTransformerConfig(src_vocab_size=13, tgt_vocab_size=18, d_model=32, nhead=4, dim_feedforward=64,
                                   max_len=24, **kwargs)
    return Seq2SeqTransformer(cfg).eval()


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, 13, (4, 9), generator=g)
    src[1, 6:] = 0
    tgt = torch.randint(3, 18, (4, 8), generator=g)
    tgt[:, 0] = 1
    return src, tgt


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_is_causal(norm_first):
    model = small_model(norm_first=norm_first)
    src, tgt = batch()
    logits = model(src, tgt)
    assert logits.shape == (4, 8, 18)
    for t in range(1, 8):
        changed = tgt.clone()
        changed[:, t:] = torch.randint(3, 18, (4, 8 - t), generator=torch.Generator().manual_seed(t))
        other = model(src, changed)
        assert torch.allclose(logits[:, :t], other[:, :t], atol=1e-5)      # 位置 < t 不受后面的字影响
        assert not torch.allclose(logits[:, t:], other[:, t:], atol=1e-3)


def test_padding_in_source_is_ignored():
    model = small_model()
    src, tgt = batch()
    other = src.clone()
    other[1, 6:] = 0
    longer = torch.cat([src, torch.zeros(4, 3, dtype=torch.long)], 1)       # 多补几个 pad
    assert torch.allclose(model(src, tgt), model(longer, tgt), atol=1e-5)


def test_greedy_decode_matches_teacher_forcing_on_its_own_output():
    """Transformer 用第 4 章的解码器：贪心结果再用教师强制一次算完，每一步的 argmax 都相同。"""
    model = small_model(seed=3)
    src, _ = batch(1)
    out = model.greedy_decode(src, max_len=10)
    assert len(out) == 4 and all(len(o) <= 10 and 2 not in o for o in out)
    for b, seq in enumerate(out):
        tgt_in = torch.tensor([[1] + seq])
        logits = model(src[b:b + 1], tgt_in)                                # 一次并行算完
        logits[..., [0, 1]] = float("-inf")                                 # 解码器不生成 <pad>、<bos>
        steps = logits.argmax(-1)[0]
        assert steps[:len(seq)].tolist() == seq


def test_beam_search_works_for_the_transformer_and_beam_1_is_greedy():
    """第 4 章的束搜索对 Transformer 也适用：束宽 1 就是贪心；束宽 4 的结果对数概率不低于贪心（按模型打分）。"""
    from lmcourse.models import seq2seq as s2s

    model = small_model(seed=3).eval()
    src, _ = batch(1)
    lengths = (src != 0).sum(1)
    greedy = s2s.greedy_decode(model, src, lengths, max_len=10)[0]
    assert s2s.beam_search(model, src, lengths, beam_size=1, max_len=10)[0] == greedy
    seqs, aligns, logps = s2s.beam_search(model, src, lengths, beam_size=4, max_len=10)
    assert len(seqs) == 4 and aligns[0].shape[1] == int(lengths[0])


def test_attention_weights_shapes():
    model = small_model()
    src, tgt = batch()
    w = model.attention_weights(src, tgt)
    assert w["encoder"].shape == (4, 2, 4, 9, 9)
    assert w["decoder"].shape == (4, 2, 4, 8, 8) and w["cross"].shape == (4, 2, 4, 8, 9)
    assert (w["cross"][1, :, :, :, 6:] == 0).all()                          # 不看源端的填充
    assert (w["decoder"][..., causal_mask(8)] == 0).all()


def test_seq2seq_bad_input():
    with pytest.raises(ValueError, match="nhead=3"):
        Seq2SeqTransformerConfig(13, 18, d_model=32, nhead=3)
    with pytest.raises(ValueError, match="dropout"):
        Seq2SeqTransformerConfig(13, 18, dropout=-0.1)
    with pytest.raises(TypeError, match="config"):
        Seq2SeqTransformer({"src_vocab_size": 13})
    model = small_model()
    src, tgt = batch()
    with pytest.raises(ValueError, match="src.*long"):
        model(src.float(), tgt)
    with pytest.raises(ValueError, match="tgt_in.*字表"):
        model(src, tgt + 20)
    with pytest.raises(ValueError, match="max_len=24"):
        model(torch.ones(2, 30, dtype=torch.long), tgt)
    with pytest.raises(ValueError, match="max_len"):
        model.greedy_decode(src, max_len=100)
