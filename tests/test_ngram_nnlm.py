import math

import numpy as np
import pytest
import torch

from lmcourse.models.ngram import NGramLM
from lmcourse.models.nnlm import NNLM, NNLMConfig, lm_eval_batches, lm_loss, sample, windows
from lmcourse.train import evaluate, fit

TOY = [0, 1, 2, 3, 1, 2, 3, 1, 2, 4, 0, 1, 2, 3]


@pytest.mark.parametrize("n,smoothing,k", [(1, "kn", 1), (2, "kn", 1), (3, "kn", 1), (3, "add_k", 1), (2, "add_k", 0.1)])
def test_ngram_distributions_sum_to_one(n, smoothing, k):
    m = NGramLM(n, 6, smoothing, k=k).fit(TOY)
    for ctx in ([1, 2], [5, 5], [3]):
        p = m.distribution(ctx)
        assert p.sum() == pytest.approx(1.0)
        assert all(m.prob(w, ctx) == pytest.approx(p[w]) for w in range(6))


def test_mle_gives_infinite_perplexity_on_unseen():
    m = NGramLM(2, 6, "add_k", k=0).fit(TOY)
    assert math.isinf(m.perplexity([0, 5]))
    assert m.prob(2, [1]) == pytest.approx(1.0)  # 1 后面总是 2


def test_kneser_ney_hand_computed_bigram():
    # 二元 KN：P(2|1) = (c(1,2) - d)/c(1·) + d·N1+(1·)/c(1·)·P_cont(2)
    m = NGramLM(2, 6, "kn", discount=0.5).fit(TOY)
    bigrams = list(zip(TOY, TOY[1:]))
    c12, c1 = bigrams.count((1, 2)), sum(a == 1 for a, _ in bigrams)
    types = {b for a, b in bigrams if a == 1}
    pc = len({a for a, b in set(bigrams) if b == 2}) / len(set(bigrams))
    p_uni = 0.5 * len({b for _, b in set(bigrams)}) / len(set(bigrams))  # 一元级插值到均匀分布的权重
    pc = max(len({a for a, b in set(bigrams) if b == 2}) - 0.5, 0) / len(set(bigrams)) + p_uni / 6
    want = (c12 - 0.5) / c1 + 0.5 * len(types) / c1 * pc
    assert m.prob(2, [1]) == pytest.approx(want)


def test_ngram_bad_input():
    with pytest.raises(ValueError, match="smoothing"):
        NGramLM(3, 10, "good_turing")
    with pytest.raises(TypeError, match="n"):
        NGramLM("3", 10)
    with pytest.raises(ValueError, match="ids"):
        NGramLM(3, 10).fit([1])
    with pytest.raises(TypeError, match="ids"):
        NGramLM(2, 10).fit("abc")


def test_ngram_nll_over_blocks_with_start():
    # 若干条序列、从第 start 个起预测：等于把每个被预测 token 的 -log p 逐个加起来求平均，上文不越出本条
    m = NGramLM(3, 6).fit(TOY)
    blocks = torch.tensor([TOY[:7], TOY[7:]])
    want = [-math.log(m.prob(r[t], r[t - 2:t])) for r in blocks.tolist() for t in range(2, 7)]
    assert m.nll(blocks, start=2) == pytest.approx(sum(want) / len(want))
    assert m.perplexity(blocks, start=2) == pytest.approx(math.exp(sum(want) / len(want)))
    assert m.nll(TOY) == pytest.approx(m.nll([TOY]))
    with pytest.raises(ValueError, match="start"):
        m.nll(TOY, start=0)
    with pytest.raises(ValueError, match="ids"):
        m.nll([1, 2], start=2)


def test_ngram_sample_is_seeded():
    m = NGramLM(2, 6).fit(TOY)
    a = m.sample([0], 10, np.random.default_rng(1))
    assert a == m.sample([0], 10, np.random.default_rng(1)) and len(a) == 10


def test_nnlm_windows_and_training_lowers_loss():
    torch.manual_seed(0)
    stream = torch.tensor(TOY * 20)
    x, y = windows(stream, torch.tensor([0, 1, 5]), 3)
    assert x.tolist()[2] == TOY[2:5] and y.tolist() == [TOY[0], TOY[1], TOY[5]]
    assert x.tolist()[0] == [TOY[0]] * 3  # 开头不足时用第一个 id 补齐
    model = NNLM(NNLMConfig(vocab_size=6, context=3, embed_dim=8, hidden_dim=16, direct=True))
    before = evaluate(model, lm_eval_batches(stream, 3), lm_loss)
    g = torch.Generator().manual_seed(0)
    hist = fit(model, lambda s: windows(stream, torch.randint(1, len(stream), (32,), generator=g), 3),
               lm_loss, 200, lr=1e-2, progress=False)
    after = evaluate(model, lm_eval_batches(stream, 3), lm_loss)
    assert after < before * 0.5 and len(hist) == 10
    assert len(sample(model, [0], 5, generator=torch.Generator().manual_seed(0))) == 5
    with pytest.raises(ValueError, match="context"):
        model(torch.zeros(2, 5, dtype=torch.long))


def test_fit_rejects_bad_steps():
    model = NNLM(NNLMConfig(vocab_size=6, context=2, embed_dim=4, hidden_dim=4))
    with pytest.raises(ValueError, match="steps"):
        fit(model, None, lm_loss, 0)
    with pytest.raises(ValueError, match="batches"):
        evaluate(model, [], lm_loss)


def test_nnlm_checkpoint_reproduces_its_recorded_test_perplexity():
    """第 1 章引用检查点 JSON 里的测试、验证困惑度：在整个测试集和验证集上重算，与记录相差不到 1%（fp16 存储的误差）。"""
    import math

    from lmcourse import data
    from lmcourse.models import nnlm
    from lmcourse.train import evaluate

    model, meta = nnlm.from_checkpoint()
    test_ids = data.lm_stream("test")
    ppl = math.exp(evaluate(model, nnlm.lm_eval_batches(test_ids, model.config.context), nnlm.lm_loss))
    assert abs(ppl - meta["metrics"]["test_ppl"]) < 0.01 * meta["metrics"]["test_ppl"]
    valid = math.exp(evaluate(model, nnlm.lm_eval_batches(data.lm_stream("valid"), model.config.context), nnlm.lm_loss))
    assert abs(valid - meta["metrics"]["valid_ppl"]) < 0.01 * meta["metrics"]["valid_ppl"]   # 第 1 章也引用它
