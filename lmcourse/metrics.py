"""评估指标：困惑度、准确率、AUC（scikit-learn）及其标准误、最佳阈值搜索。"""
import math

import numpy as np

from lmcourse._check import check_choice, check_int, check_number


def perplexity(mean_nll):
    """平均负对数似然（以 e 为底）-> 困惑度 exp(NLL)。"""
    check_number("mean_nll", mean_nll, minimum=0)
    return math.exp(mean_nll)


def _as_arrays(y_true, scores):
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=float)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"参数 y_true 和 scores 应为一维序列，收到形状 {y.shape} 和 {s.shape}")
    if len(y) != len(s):
        raise ValueError(f"参数 y_true 与 scores 长度不同：{len(y)} 对 {len(s)}")
    if len(y) == 0:
        raise ValueError("参数 y_true 为空")
    return y, s


def accuracy(y_true, y_pred):
    """预测正确的比例。"""
    y, p = _as_arrays(y_true, y_pred)
    return float((y == p).mean())


def auc(y_true, scores):
    """ROC 曲线下面积（scikit-learn 计算）。y_true 须同时含 0 和 1。"""
    from sklearn.metrics import roc_auc_score

    y, s = _as_arrays(y_true, scores)
    _check_binary(y)
    return float(roc_auc_score(y, s))


def auc_standard_error(auc_value, n_pos, n_neg):
    """AUC 的抽样标准误（Hanley 与 McNeil，1982）：n_pos 个正例、n_neg 个负例的测试集上，AUC 为 auc_value 时。"""
    check_number("auc_value", auc_value, minimum=0, maximum=1)
    check_int("n_pos", n_pos, minimum=1)
    check_int("n_neg", n_neg, minimum=1)
    a = float(auc_value)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    return math.sqrt((a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg))


def _check_binary(y):
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"参数 y_true 只能含 0 和 1，收到 {sorted(values)[:5]}")
    if len(values) < 2:
        raise ValueError(f"参数 y_true 只含一个类别 {values.pop()}，无法评估")


def best_threshold(y_true, scores, metric="f1"):
    """在所有候选阈值（scores 里出现过的值）中找使 metric（f1 或 accuracy）最大的一个，返回 (threshold, value)。

    预测规则为 score >= threshold 判为正类（1）；并列时取较小的阈值。曲线由 scikit-learn 一次算出。
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    check_choice("metric", metric, ("f1", "accuracy"))
    y, s = _as_arrays(y_true, scores)
    _check_binary(y)
    if metric == "f1":
        precision, recall, thresholds = precision_recall_curve(y, s)          # 阈值从小到大
        p, r = precision[:-1], recall[:-1]
        values = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=p + r > 0)
    else:
        fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)       # 阈值从大到小，第一个是 +inf
        pos = y.sum()
        values = (tpr * pos + (1 - fpr) * (len(y) - pos)) / len(y)
        thresholds, values = thresholds[1:][::-1], values[1:][::-1]         # 去掉“全判为负”，改成从小到大
    best = int(np.argmax(values))
    return float(thresholds[best]), float(values[best])


# ---------- 计算量：第 8、11 章按运算数比较模型 ----------
def flops_per_token(model_config, kind, seq_len=256, tail_share=None):
    """训练时每个字的浮点运算数：前向 + 反向 ≈ 3 × 前向，前向的每次乘加算 2 次运算，只数矩阵乘法。

    gpt：每层 12·C² 个权重（注意力 4C²、前馈 8C²），注意力的打分与加权每个字平均看 T/2 个字（2·(T/2)·C），
    输出层 C·V。lstm：4 个门 4·H·(E + H)，自适应 softmax 的头部 H·(cutoff₀ + 簇数)；
    尾部簇只对落在簇里的字计算，tail_share 是各簇的字在训练数据里所占的比例（不给时按全算，是上界）。
    """
    if kind == "gpt":
        C, L, V = model_config["n_embd"], model_config["n_layer"], model_config["vocab_size"]
        macs = L * (12 * C * C + 2 * (seq_len // 2) * C) + C * V
    elif kind == "lstm":
        E, H, V = model_config["embed_dim"], model_config["hidden_dim"], model_config["vocab_size"]
        edges = list(model_config["cutoffs"]) + [V]
        share = tail_share or [1.0] * (len(edges) - 1)
        macs = 4 * H * (E + H) + H * (edges[0] + len(edges) - 1)
        for i in range(len(edges) - 1):                  # 第 i 个尾部簇：先降到 H / 4^(i+1) 维，再打簇里的字
            d = H // (4 ** (i + 1))
            macs += share[i] * (H * d + d * (edges[i + 1] - edges[i]))
    else:
        raise ValueError(f"参数 kind 应为 gpt 或 lstm，收到 {kind!r}")
    return 6 * macs
