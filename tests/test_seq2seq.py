import pytest
import torch

from lmcourse.data import synthetic as syn
from lmcourse.models import seq2seq as s2s

KINDS = [None, "bahdanau", "luong"]
PAIRS = [("5", "五"), ("2024", "二千零二十四"), ("10001", "一万零一"), ("120", "一百二十")]


def tiny(attention, seed=0, eos_bias=0.0, **kw):
    torch.manual_seed(seed)
    cfg = s2s.Seq2SeqConfig(len(syn.SRC_VOCAB), len(syn.TGT_VOCAB), embed_dim=8, hidden_dim=16,
                            attention=attention, **kw)
    model = s2s.Seq2Seq(cfg).eval()
    with torch.no_grad():                     # 随机模型加一点 <eos> 偏置，让序列在 max_len 之前结束
        model.out.bias[cfg.eos_id] += eos_bias
    return model


@pytest.mark.parametrize("kind", KINDS)
def test_forward_shapes_and_padding_gets_no_attention(kind):
    model = tiny(kind)
    src, lengths, tgt_in, tgt_out = syn.make_batch(PAIRS)
    logits, weights = model(src, lengths, tgt_in, return_attention=True)
    assert logits.shape == (4, tgt_in.size(1), len(syn.TGT_VOCAB))
    if kind is None:
        assert weights is None
        return
    assert weights.shape == (4, tgt_in.size(1), src.size(1))
    pad = src == syn.SRC_VOCAB.pad_id                                  # (B, S)
    assert pad.any()
    assert (weights.masked_select(pad.unsqueeze(1).expand_as(weights)) == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))


@pytest.mark.parametrize("kind", KINDS)
def test_padding_does_not_change_outputs(kind):
    model = tiny(kind)
    src, lengths, tgt_in, _ = syn.make_batch(PAIRS)
    alone = syn.make_batch(PAIRS[:1])                                  # 同一个样本不加填充
    full = model(src, lengths, tgt_in)[0, :alone[2].size(1)]
    torch.testing.assert_close(full, model(alone[0], alone[1], alone[2])[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_forward_equals_step_by_step(kind):
    model = tiny(kind)
    src, lengths, tgt_in, _ = syn.make_batch(PAIRS)
    logits, weights = model(src, lengths, tgt_in, return_attention=True)
    memory, state, mask = model.encode(src, lengths)
    for t in range(tgt_in.size(1)):
        step, state, w = model.decode_step(tgt_in[:, t], state, memory, mask)
        torch.testing.assert_close(step, logits[:, t], atol=1e-5, rtol=1e-5)
        if kind:
            torch.testing.assert_close(w, weights[:, t], atol=1e-6, rtol=1e-5)


def test_luong_dot_and_parameter_counts():
    counts = {k: tiny(k).num_parameters for k in KINDS}
    assert counts[None] < counts["luong"] < counts["bahdanau"]
    assert tiny("luong", luong_score="dot").num_parameters == counts["luong"] - 16 * 16
    assert tiny("luong").score.kind == "general" and tiny("bahdanau").score.kind == "additive"


def _greedy_reference(model, src, lengths, max_len):
    """逐个样本、不做任何批处理的贪心解码，作为对照。"""
    out = []
    for i in range(src.size(0)):
        s, n = src[i:i + 1, :lengths[i]], lengths[i:i + 1]
        memory, state, mask = model.encode(s, n)
        y, seq = torch.tensor([model.config.bos_id]), []
        for _ in range(max_len):
            logits, state, _ = model.decode_step(y, state, memory, mask)
            logits[:, :2] = float("-inf")                                # 不生成 <pad>、<bos>
            y = logits.argmax(-1)
            if y.item() == model.config.eos_id:
                break
            seq.append(y.item())
        out.append(seq)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_batched_equals_per_example_and_beam1(kind):
    model = tiny(kind, seed=1, eos_bias=2.0)
    src, lengths, _, _ = syn.make_batch(PAIRS)
    seqs, aligns = s2s.greedy_decode(model, src, lengths, max_len=12)
    assert max(map(len, seqs)) < 12                                  # 都以 <eos> 结束
    assert seqs == _greedy_reference(model, src, lengths, 12)
    beam, beam_aligns, logp = s2s.beam_search(model, src, lengths, beam_size=1, max_len=12)
    assert beam == seqs
    torch.testing.assert_close(torch.tensor(logp), s2s.sequence_log_prob(model, src, lengths, seqs),
                               atol=1e-4, rtol=1e-4)
    for i, a in enumerate(aligns):
        if kind is None:
            assert a is None and beam_aligns[i] is None
        else:
            assert a.shape[1] == lengths[i] and a.shape[0] in (len(seqs[i]), len(seqs[i]) + 1)
            torch.testing.assert_close(a, beam_aligns[i])


@pytest.fixture(scope="module")
def trained():
    """各训练 150 步的小模型：还没学好，输出有不确定性，束搜索才有用武之地。"""
    import random

    from lmcourse.train import fit

    train, models = syn.number_pairs("train"), {}
    for kind in KINDS:
        model = tiny(kind)
        fit(model, lambda i: syn.make_batch(random.Random(i).sample(train, 32)), s2s.loss_fn, 150, lr=0.01,
            clip=None, progress=False)
        models[kind] = model.eval()
    return models


@pytest.mark.parametrize("kind", KINDS)
def test_beam_finds_at_least_greedy_log_prob(kind, trained):
    model = trained[kind]
    pairs = syn.number_pairs("valid")[:60]
    src, lengths, _, _ = syn.make_batch(pairs)
    greedy = s2s.greedy_decode(model, src, lengths, max_len=20)[0]
    assert max(map(len, greedy)) < 20                                  # 都以 <eos> 结束
    seqs, _, logp, beams = s2s.beam_search(model, src, lengths, beam_size=5, max_len=20,
                                           return_beams=True)
    lp_greedy = s2s.sequence_log_prob(model, src, lengths, greedy)
    lp_beam = s2s.sequence_log_prob(model, src, lengths, seqs)
    torch.testing.assert_close(lp_beam, torch.tensor(logp), atol=1e-4, rtol=1e-4)
    # 束搜索并不保证总比贪心好（贪心的前缀可能中途被挤出束）：要求绝大多数不差、平均更好、多处更好
    not_worse = lp_beam >= lp_greedy - 1e-4
    assert not_worse.float().mean() >= 0.9 and lp_beam.mean() > lp_greedy.mean()
    assert (lp_beam > lp_greedy + 1e-4).sum() >= 10
    if kind is not None:
        assert not_worse.all()
    for hyps in beams:                                                 # 束里按分数从高到低、互不相同
        assert len(hyps) == 5 and len({tuple(h[0]) for h in hyps}) == 5
        assert all(a[1] >= b[1] for a, b in zip(hyps, hyps[1:]))


def test_length_penalty_prefers_longer(trained):
    model = trained["luong"]
    src, lengths, _, _ = syn.make_batch(syn.number_pairs("valid")[:60])
    plain = s2s.beam_search(model, src, lengths, beam_size=5)[0]
    longer = s2s.beam_search(model, src, lengths, beam_size=5, length_penalty=2.0)[0]
    assert sum(map(len, longer)) >= sum(map(len, plain))


def test_beam_stops_at_eos():
    model = tiny("luong")
    with torch.no_grad():                                             # 让 <eos> 永远最可能
        model.out.bias.fill_(0)
        model.out.bias[model.config.eos_id] = 50
    src, lengths, _, _ = syn.make_batch(PAIRS)
    seqs, aligns, logp = s2s.beam_search(model, src, lengths, beam_size=3)
    assert seqs == [[]] * 4 and all(a.shape[0] == 1 for a in aligns)
    assert s2s.greedy_decode(model, src, lengths)[0] == [[]] * 4


def test_translate_keeps_order(trained):
    model = trained["luong"]
    sources = ["12345", "7", "808"]
    out = s2s.translate(model, sources, syn.SRC_VOCAB, syn.TGT_VOCAB, batch_size=2, max_len=20)
    src, lengths, _, _ = syn.make_batch([(s, "") for s in sources])
    expect = [syn.TGT_VOCAB.decode(s) for s in s2s.greedy_decode(model, src, lengths, max_len=20)[0]]
    assert out == expect
    assert s2s.translate(model, sources, syn.SRC_VOCAB, syn.TGT_VOCAB, method="beam", beam_size=1,
                         max_len=20) == expect


def test_loss_ignores_padding_and_learns():
    from lmcourse.train import evaluate, fit

    torch.manual_seed(0)
    model = tiny("luong").train()
    batch = syn.make_batch(PAIRS)
    loss_sum, n = s2s.loss_fn(model, batch)
    assert n == sum(len(t) + 1 for _, t in PAIRS)                     # 每句的字加 <eos>，填充不算
    longer = (batch[0], batch[1], *(torch.nn.functional.pad(t, (0, 3), value=syn.TGT_VOCAB.pad_id) for t in batch[2:]))
    torch.testing.assert_close(s2s.loss_fn(model, longer)[0], loss_sum)  # 多补 3 列填充，损失之和不变
    first = evaluate(model, [batch], s2s.loss_fn)
    fit(model, lambda i: batch, s2s.loss_fn, 60, optimizer=torch.optim.Adam(model.parameters(), lr=0.02), clip=0,
        progress=False)
    assert evaluate(model, [batch], s2s.loss_fn) < 0.1 * first
    pred = s2s.translate(model, [s for s, _ in PAIRS], syn.SRC_VOCAB, syn.TGT_VOCAB)
    assert pred == [t for _, t in PAIRS]


def test_bad_inputs():
    with pytest.raises(ValueError, match="attention"):
        s2s.Seq2SeqConfig(13, 18, attention="dot")
    with pytest.raises(ValueError, match="hidden_dim"):
        s2s.Seq2SeqConfig(13, 18, hidden_dim=15)
    with pytest.raises(TypeError, match="config"):
        s2s.Seq2Seq({"attention": None})
    model = tiny("bahdanau")
    src, lengths, tgt_in, _ = syn.make_batch(PAIRS)
    with pytest.raises(ValueError, match="src_lengths"):
        model(src, lengths + 5, tgt_in)
    with pytest.raises(ValueError, match="src_lengths"):
        model(src, lengths[:2], tgt_in)
    with pytest.raises(ValueError, match="src"):
        model(src.float(), lengths, tgt_in)
    with pytest.raises(ValueError, match="tgt_in"):
        model(src, lengths, tgt_in[:2])
    with pytest.raises(ValueError, match="beam_size"):
        s2s.beam_search(model, src, lengths, beam_size=0)
    with pytest.raises(ValueError, match="max_len"):
        s2s.greedy_decode(model, src, lengths, max_len=0)
    with pytest.raises(TypeError, match="model"):
        s2s.greedy_decode(torch.nn.Linear(2, 2), src, lengths)
    with pytest.raises(ValueError, match="method"):
        s2s.translate(model, ["1"], syn.SRC_VOCAB, syn.TGT_VOCAB, method="sample")
