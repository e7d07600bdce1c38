"""第 7 章的两个 BERT 检查点。

bert_news：用 pretrain 命令在人民日报 + 评论训练集的文本上做 MLM 预训练（前归一化的小 BERT）。
bert_sentiment：在 bert_news 上微调评论情感分类。先做技巧对比：从同一个基线出发，每次只改一项，
每项用 3 个种子各微调同样的步数，在验证集上比 AUC（均值 ± 标准差）；只采用提升超过噪声的改动，
训练更久得到最终模型，在测试集上报告 AUC。
"""
import time
from dataclasses import asdict, replace

from lmcourse.recipes.common import history, pretrain

BERT_ARGS = ["bert", "--preset", "small", "--corpus", "both", "--steps", "22000", "--batch-size", "8",
             "--seq-len", "128", "--lr", "1e-3", "--schedule", "linear", "--warmup", "0.02",
             "--weight-decay", "0.01", "--dropout", "0", "--mask-prob", "0.4", "--seed", "0",
             "--eval-every", "1000", "--threads", "1"]


def masked_metrics(model, split, mask_prob=0.15):
    """人民日报某个划分上的掩码字困惑度与准确率：按原顺序打包成 128 字的块，掩码用固定种子，全部块都算。"""
    from lmcourse import data, objectives
    from lmcourse.pretrain import eval_batches

    tok = data.bert_tokenizer()
    objective = objectives.get("mlm", tokenizer=tok, p=mask_prob)
    m = objective.metrics(model, eval_batches(objective, tok, True, 128, split=split, blocks=10 ** 9))
    return {"mlm_ppl": m["valid_ppl"], "mlm_acc": m["valid_acc"]}


def bert_news():
    """小 BERT（4 层、H=128、前归一化 + ALiBi）在人民日报 + 评论文本上做 MLM（遮 40%）。"""
    from lmcourse import data
    from lmcourse.ckpt import vocab_hash
    from lmcourse.models.bert import BertConfig, BertForPreTraining

    state, config, metrics, command = pretrain("bert_news", BERT_ARGS)
    model = BertForPreTraining(BertConfig(**config["model_config"]))
    model.load_state_dict(state)
    model.eval()
    valid, test = masked_metrics(model, "valid"), masked_metrics(model, "test")
    a = config["args"]
    meta = {"config": config["model_config"], "vocab_hash": vocab_hash(data.bert_tokenizer()), "seed": a["seed"],
            "data": "人民日报 1998-01 训练集 + 评论训练集的文本（数字换成 #NUM#），流式打包成 128 字的块；"
                    "valid / test 为人民日报的留出划分，按原顺序打包、固定掩码",
            "pretrain_command": command,
            "optimizer": f"AdamW（权重衰减 {a['weight_decay']}），学习率峰值 {a['lr']}，{a['warmup']} 升温后线性衰减，"
                         f"batch={a['batch_size']}，块长 {a['seq_len']}，掩码比例 {a['mask_prob']}，"
                         f"目标 {a['objective']}，steps={a['steps']}",
            "tokens_seen": a["steps"] * a["batch_size"] * a["seq_len"], "train_seconds": metrics["train_seconds"],
            "tokens_per_second": metrics["tokens_per_second"],
            "history": history(metrics, ["train_loss", "valid_ppl", "valid_acc"], 4),
            "metrics": {"valid_mlm_ppl": round(valid["mlm_ppl"], 2), "valid_mlm_acc": round(valid["mlm_acc"], 4),
                        "test_mlm_ppl": round(test["mlm_ppl"], 2), "test_mlm_acc": round(test["mlm_acc"], 4)}}
    return model, meta


# ---------- bert_sentiment ----------
TRICKS = [  # (名称, 相对基线的改动)
    ("基线：[CLS] 池化", {}),
    ("平均池化 mean", {"pooling": "mean"}),
    ("最大池化 max", {"pooling": "max"}),
    ("拼接 mean_max", {"pooling": "mean_max"}),
    ("不做 L2（权重衰减 0）", {"weight_decay": 0.0}),
    ("权重衰减 0.1", {"weight_decay": 0.1}),
    ("不用 dropout", {"dropout": 0.0}),
    ("dropout 0.3", {"dropout": 0.3}),
    ("只用 2 个 Transformer 块", {"num_layers": 2}),
    ("数据增强（删字、换序）", {"augment": True}),
    ("不预训练（随机初始化）", {"init": "scratch"}),
]
SENTIMENT = dict(seeds=(0, 1, 2), trick_epochs=0.5, final_epochs=3.0)


def bert_sentiment(**overrides):
    """技巧表（每行 3 个种子）+ 最终模型。"""
    import statistics

    from lmcourse import data, metrics, set_seed
    from lmcourse.ckpt import vocab_hash
    from lmcourse.finetune import FineTuneConfig, build_classifier, fine_tune, predict, preprocess
    from lmcourse.models.bert import from_checkpoint as load_pretrained

    hp = dict(SENTIMENT, **overrides)
    t0 = time.perf_counter()
    tok = data.bert_tokenizer()
    raw = data.load_sentiment()
    train, valid, test = (preprocess(raw[s], tok) for s in ("train", "valid", "test"))
    y_valid, y_test = [d["label"] for d in valid], [d["label"] for d in test]
    pre, pre_meta = load_pretrained("bert_news")
    states = {"config": pre_meta["config"], "news": pre.state_dict()}
    base = FineTuneConfig(epochs=hp["trick_epochs"])
    table = []
    for name, change in TRICKS:
        aucs = []
        for seed in hp["seeds"]:
            set_seed(seed)
            ft = replace(base, **change)
            model = build_classifier(ft, states)
            hist, _ = fine_tune(model, train, valid, ft, tok, seed, desc=f"{name}（种子 {seed}）")
            aucs.append(hist.last["valid_auc"])
        row = {"name": name, "change": change, "valid_aucs": [round(a, 4) for a in aucs],
               "mean": round(statistics.mean(aucs), 4), "sd": round(statistics.stdev(aucs), 4)}
        table.append(row)
        print(row, flush=True)
    # 采用的改动：均值比基线高出两者标准差之和以上（同一项取最好的一个）
    base_row, best = table[0], {}
    for row in table[1:]:
        if row["mean"] - base_row["mean"] > row["sd"] + base_row["sd"]:
            for k, v in row["change"].items():
                if k not in best or row["mean"] > best[k][1]:
                    best[k] = (v, row["mean"])
    final = replace(base, epochs=hp["final_epochs"], **{k: v for k, (v, _) in best.items()})
    set_seed(0)
    model = build_classifier(final, states)
    hist, valid_scores = fine_tune(model, train, valid, final, tok, 0, desc="最终模型")
    test_scores = predict(model, test)
    t, _ = metrics.best_threshold(y_valid, valid_scores, "accuracy")
    meta = {
        "config": pre_meta["config"], "vocab_hash": vocab_hash(tok), "seed": 0,
        "data": "lmcourse.data.load_sentiment()：去重、删掉矛盾文本后 8:1:1 分层划分；技巧在 valid 上比较，test 只报告最终模型",
        "pretrained_from": "bert_news", "tricks": table, "trick_epochs": hp["trick_epochs"], "seeds": list(hp["seeds"]),
        "adopted": {k: v for k, (v, _) in best.items()}, "final_config": asdict(final),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "metrics": {"valid_auc": round(hist.last["valid_auc"], 4),
                    "test_auc": round(metrics.auc(y_test, test_scores), 4),
                    "threshold": round(t, 4),
                    "test_acc@0.5": round(metrics.accuracy(y_test, [int(s >= 0.5) for s in test_scores]), 4),
                    "test_acc@threshold": round(metrics.accuracy(y_test, [int(s >= t) for s in test_scores]), 4)},
    }
    return model, meta
