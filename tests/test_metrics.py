import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from lmcourse.metrics import accuracy, auc, best_threshold, perplexity


def test_perplexity():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(40)) == pytest.approx(40)
    with pytest.raises(ValueError, match="mean_nll"):
        perplexity(-1)


def test_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = y + rng.normal(0, 1, 200)
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert accuracy([1, 0, 1], [1, 1, 1]) == pytest.approx(2 / 3)


def test_best_threshold_finds_the_best_cut():
    y = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.3, 0.35, 0.6, 0.7, 0.8, 0.9])
    t, v = best_threshold(y, s)
    brute = max(f1_score(y, (s >= c).astype(int)) for c in s)
    assert v == pytest.approx(brute)
    assert f1_score(y, (s >= t).astype(int)) == pytest.approx(v)
    t2, v2 = best_threshold(y, s, metric="accuracy")
    assert v2 == pytest.approx(max(((s >= c) == y).mean() for c in s))


@pytest.mark.parametrize("seed", range(5))
def test_best_threshold_equals_brute_force_with_ties(seed):
    # 随机数据、打分有并列：与逐个阈值试一遍的结果相同（并列时取最小的阈值）
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(y * 0.3 + rng.random(300), 1)
    for metric, fn in (("f1", f1_score), ("accuracy", lambda a, b: (a == b).mean())):
        values = {c: fn(y, (s >= c).astype(int)) for c in np.unique(s)}
        best = max(values.values())
        want = min(c for c, v in values.items() if v == pytest.approx(best))
        t, v = best_threshold(y, s, metric)
        assert v == pytest.approx(best) and t == pytest.approx(want)


def test_best_threshold_bad_input():
    with pytest.raises(ValueError, match="长度不同"):
        best_threshold([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="一个类别"):
        best_threshold([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="metric"):
        best_threshold([0, 1], [0.1, 0.2], metric="auc")
    with pytest.raises(ValueError, match="只能含 0 和 1"):
        auc([0, 2], [0.1, 0.2])


def test_auc_standard_error():
    from lmcourse.metrics import auc_standard_error

    # Hanley 与 McNeil（1982）的公式；AUC 0.5、各 500 条时约 0.0183，越接近 1 越小
    se = auc_standard_error(0.5, 500, 500)
    assert abs(se - 0.01827) < 1e-4
    assert auc_standard_error(0.9, 500, 500) < se
    with pytest.raises(ValueError, match="auc_value"):
        auc_standard_error(1.5, 10, 10)
    with pytest.raises((ValueError, TypeError), match="n_pos"):
        auc_standard_error(0.8, 0, 10)
