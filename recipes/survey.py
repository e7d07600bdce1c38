"""第 11 章对比表的情感一列里，LSTM 与 ELMo 两行：冻结的语言模型表示 + 逻辑回归（特征抽取式的用法）。

frozen_sentiment：lstm_lm 的顶层隐藏状态、elmo 的 L+1 层表示，各自在每条评论上取平均，作为特征
（lmcourse.finetune.review_features，第 11 章也用它）；
标准化之后用逻辑回归（scikit-learn，C=1，与第 11 章 NNLM 字向量那一行同一个做法）在训练集上拟合，
报告验证集和测试集的 AUC。逻辑回归是凸问题，没有随机种子；权重（均值、标准差、线性层）存成检查点。
"""
from lmcourse.finetune import review_features


def frozen_sentiment():
    """LSTM 语言模型与 ELMo 的冻结表示做情感分类（取平均 + 逻辑回归）。"""
    import time

    import torch
    from sklearn.linear_model import LogisticRegression

    from lmcourse import data, metrics, num_threads, set_seed
    from lmcourse.ckpt import vocab_hash
    from lmcourse.models import elmo, rnn

    set_seed(0)
    num_threads(1)
    tok = data.lm_tokenizer()
    reviews = data.load_sentiment()
    models = {"lstm": rnn.from_checkpoint()[0], "elmo": elmo.from_checkpoint()[0]}
    probes, results, t0 = torch.nn.ModuleDict(), {}, time.perf_counter()
    for kind, model in models.items():
        X = {s: review_features(kind, model, tok, [d["text"] for d in reviews[s]]).double().numpy()
             for s in ("train", "valid", "test")}
        y = {s: [d["label"] for d in reviews[s]] for s in X}
        mu, sd = X["train"].mean(0), X["train"].std(0) + 1e-6
        clf = LogisticRegression(C=1.0, max_iter=5000).fit((X["train"] - mu) / sd, y["train"])
        results[kind] = {f"{s}_auc": round(metrics.auc(y[s], clf.predict_proba((X[s] - mu) / sd)[:, 1]), 4)
                         for s in ("valid", "test")}
        results[kind]["dim"] = int(X["train"].shape[1])
        probe = torch.nn.Linear(X["train"].shape[1], 1).double()
        with torch.no_grad():
            probe.weight.copy_(torch.from_numpy(clf.coef_))
            probe.bias.copy_(torch.from_numpy(clf.intercept_))
        probe.register_buffer("mean", torch.from_numpy(mu))
        probe.register_buffer("std", torch.from_numpy(sd))
        probes[kind] = probe
    meta = {"config": {k: {"dim": v["dim"]} for k, v in results.items()}, "vocab_hash": vocab_hash(tok),
            "pretrained_from": ["lstm_lm", "elmo"],
            "data": "lmcourse.data.load_sentiment() 的 train / valid / test（去重后的固定划分）；评论用人民日报的字表编码，"
                    "不在字表里的字成了 [UNK]",
            "probe": "lstm：顶层隐藏状态在评论上取平均；elmo：L+1 层各自取平均后拼接；标准化后逻辑回归（C=1），只用训练集拟合",
            "train_seconds": round(time.perf_counter() - t0, 1),
            "metrics": {f"{k}_{m}": v[m] for k, v in results.items() for m in ("valid_auc", "test_auc")}}
    return probes, meta
