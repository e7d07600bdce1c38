import pytest
import torch

from lmcourse.models.lstm import LSTM
from lmcourse.models.rnn import CharRNNLM, RNNLMConfig, detach_state, perplexity, sample, stream_batches


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_equals_torch_float64(num_layers, batch_first, with_state):
    torch.manual_seed(0)
    ref = torch.nn.LSTM(5, 7, num_layers, batch_first=batch_first).double()
    mine = LSTM.from_torch(ref)
    x = torch.randn(3, 6, 5, dtype=torch.float64, requires_grad=True)
    x = x if batch_first else x.transpose(0, 1)
    hx = (torch.randn(num_layers, 3, 7, dtype=torch.float64), torch.randn(num_layers, 3, 7, dtype=torch.float64)) if with_state else None
    out_ref, (h_ref, c_ref) = ref(x, hx)
    out, (h, c) = mine(x, hx)
    for a, b in ((out, out_ref), (h, h_ref), (c, c_ref)):
        assert (a - b).abs().max().item() < 1e-9
    # 梯度也相同
    g_ref = torch.autograd.grad(out_ref.sum() + c_ref.sum(), [x, *ref.parameters()])
    g = torch.autograd.grad(out.sum() + c.sum(), [x, *mine.parameters()])
    assert all((a - b).abs().max().item() < 1e-9 for a, b in zip(g, g_ref))


def test_parameter_names_match_torch():
    ref = torch.nn.LSTM(4, 3, 2, batch_first=True)
    assert list(LSTM(4, 3, 2).state_dict()) == list(ref.state_dict())
    mine = LSTM.from_torch(ref)
    back = torch.nn.LSTM(4, 3, 2, batch_first=True)
    back.load_state_dict(mine.state_dict())  # 反方向也能载入
    x = torch.randn(2, 5, 4)
    assert torch.allclose(back(x)[0], ref(x)[0])


def test_gates_trace_is_consistent():
    torch.manual_seed(0)
    lstm = LSTM(4, 3)
    x = torch.randn(2, 5, 4)
    out, (h, c), trace = lstm(x, return_gates=True)
    g = trace[0]
    assert set(g) == {"input", "forget", "candidate", "output", "cell"}
    assert g["forget"].shape == (2, 5, 3)
    assert torch.allclose(g["output"] * torch.tanh(g["cell"]), out)
    assert ((g["forget"] > 0) & (g["forget"] < 1)).all()
    assert torch.allclose(g["cell"][:, -1], c[0])


def test_lstm_bad_input():
    lstm = LSTM(4, 3)
    with pytest.raises(ValueError, match="x"):
        lstm(torch.randn(5, 4))
    with pytest.raises(ValueError, match="input_size"):
        lstm(torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match=r"hx\[0\]"):
        lstm(torch.randn(2, 5, 4), (torch.zeros(1, 3, 3), torch.zeros(1, 2, 3)))
    with pytest.raises(TypeError, match="hx"):
        lstm(torch.randn(2, 5, 4), torch.zeros(1, 2, 3))
    with pytest.raises(TypeError, match="hidden_size"):
        LSTM(4, 3.5)
    with pytest.raises(ValueError, match="num_layers"):
        LSTM(4, 3, num_layers=0)
    with pytest.raises(TypeError, match="ref"):
        LSTM.from_torch(torch.nn.GRU(4, 3))
    with pytest.raises(ValueError, match="ref"):
        LSTM.from_torch(torch.nn.LSTM(4, 3, bidirectional=True))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("adaptive", [True, False])
def test_char_lm_learns_a_pattern(cell, adaptive):
    torch.manual_seed(0)
    stream = torch.tensor([6, 7, 8, 9] * 200)
    cfg = RNNLMConfig(vocab_size=20, cell=cell, embed_dim=8, hidden_dim=16, adaptive=adaptive, cutoffs=(10,))
    model = CharRNNLM(cfg)
    before = perplexity(model, stream, batch_size=4, seq_len=16)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(3):
        state = None
        for x, y in stream_batches(stream, 4, 16):
            loss, state = model.nll(x, y, detach_state(state))
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = perplexity(model, stream, batch_size=4, seq_len=16)
    assert after < 1.5 < before
    logp, _ = model.log_probs(torch.tensor([[6, 7]]))
    assert logp.shape == (1, 2, 20) and torch.allclose(logp.exp().sum(-1), torch.ones(1, 2), atol=1e-5)
    assert sample(model, [6], 4, generator=torch.Generator().manual_seed(0)) == [7, 8, 9, 6]


def test_stream_batches_cover_the_stream():
    stream = torch.arange(101)
    pairs = list(stream_batches(stream, 4, 10))
    xs = torch.cat([x for x, _ in pairs], dim=1)
    ys = torch.cat([y for _, y in pairs], dim=1)
    assert xs.shape == (4, 25) and torch.equal(ys, xs + 1)
    with pytest.raises(ValueError, match="seq_len"):
        next(stream_batches(stream, 4, 0))
    with pytest.raises(ValueError, match="x"):
        CharRNNLM(RNNLMConfig(vocab_size=20, adaptive=False)).features(torch.zeros(5, dtype=torch.long))
