"""ELMo：序列倒序、两个方向互不偷看、ScalarMix、逐句编码与整批一致。"""
import pytest
import torch

from lmcourse.models.elmo import BiLM, ELMoConfig, ScalarMix, encode_texts, reverse_padded, window_features
from lmcourse.text import CharTokenizer


def test_reverse_padded_keeps_padding_in_place():
    x = torch.arange(12).view(2, 6)
    out = reverse_padded(x, torch.tensor([6, 4]))
    assert out.tolist() == [[5, 4, 3, 2, 1, 0], [9, 8, 7, 6, 10, 11]]
    assert torch.equal(reverse_padded(out, torch.tensor([6, 4])), x)   # 倒两次复原
    v = torch.randn(2, 6, 3)
    assert torch.equal(reverse_padded(v, torch.tensor([6, 4]))[1, 0], v[1, 3])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return BiLM(ELMoConfig(vocab_size=60, dim=16, cutoffs=(10, 30))).eval()


def test_directions_do_not_peek(model):
    x = torch.randint(6, 60, (2, 12))
    y = x.clone()
    y[:, 7:] = torch.randint(6, 60, (2, 5))
    _, f1, b1 = model.directions(x)
    _, f2, b2 = model.directions(y)
    for a, b in zip(f1, f2):
        assert torch.equal(a[:, :7], b[:, :7])          # 前向：改未来不影响过去
    assert not torch.allclose(b1[0][:, :7], b2[0][:, :7])  # 后向：会受右边影响


def test_layers_shape_and_layer0_is_duplicated_embedding(model):
    x = torch.randint(6, 60, (3, 9))
    reps = model.layers(x)
    assert reps.shape == (3, 3, 9, 32)
    assert torch.equal(reps[0, ..., :16], reps[0, ..., 16:])


def test_padding_does_not_change_encodings(model):
    tok = CharTokenizer.from_texts(["今天天气很好", "我们去公园散步吧"])
    cfg = ELMoConfig(vocab_size=len(tok), dim=16, cutoffs=(4, 10))
    torch.manual_seed(0)
    m = BiLM(cfg).eval()
    together = encode_texts(m, tok, ["今天", "我们去公园散步吧"])
    alone = encode_texts(m, tok, ["今天"])
    assert together[0].shape == (3, 2, 32)
    assert torch.allclose(together[0], alone[0], atol=1e-6)
    with pytest.raises(TypeError, match="texts"):
        encode_texts(m, tok, "今天")
    # 按长度分批之后，结果仍按输入的顺序，每句与单独编码时相同
    texts = ["我们去公园散步吧", "今天", "天气很好", "今"]
    mixed = encode_texts(m, tok, texts, batch_size=2)
    for t, r in zip(texts, mixed):
        assert r.shape == (3, len(t), 32) and torch.allclose(r, encode_texts(m, tok, [t])[0], atol=1e-6)


def test_window_features():
    # 位置 t 的特征 = 第 0 层（前一半）在 t-k…t+k 的向量依次拼接，越界为 0
    static = torch.randn(5, 3)
    reps = [torch.cat([static, static], -1).expand(2, 5, 6)]            # (L+1, T, 2d)，第 0 层是 [x; x]
    out = window_features(reps, 1)[0]
    assert out.shape == (5, 9)
    assert torch.equal(out[2], torch.cat([static[1], static[2], static[3]]))
    assert torch.equal(out[0, :3], torch.zeros(3)) and torch.equal(out[0, 3:], torch.cat([static[0], static[1]]))
    assert torch.equal(window_features(reps, 0)[0], static)
    with pytest.raises(ValueError, match="k"):
        window_features(reps, -1)
    with pytest.raises(TypeError, match="reps"):
        window_features(reps[0], 1)


def test_nll_is_finite_and_trainable(model):
    x = torch.randint(6, 60, (4, 10))
    lf, lb = model.nll(x)
    assert lf.item() > 0 and lb.item() > 0
    (lf + lb).backward()
    assert model.backward_lstms[0].weight_hh_l0.grad is not None


def test_scalar_mix():
    mix = ScalarMix(3)
    layers = torch.randn(3, 2, 5, 4)
    assert torch.allclose(mix(layers), layers.mean(0), atol=1e-6)   # 初始等权、γ=1
    with torch.no_grad():
        mix.w.copy_(torch.tensor([0.0, 0.0, 50.0]))
        mix.gamma.fill_(2.0)
    assert torch.allclose(mix(layers), 2 * layers[2], atol=1e-5)
    with pytest.raises(ValueError, match="layers"):
        mix(torch.randn(2, 4))
    with pytest.raises(ValueError, match="num_layers"):
        ScalarMix(0)
    with pytest.raises(ValueError, match="x"):
        BiLM(ELMoConfig(vocab_size=60, dim=16, cutoffs=(10, 30))).layers(torch.zeros(5, dtype=torch.long))
