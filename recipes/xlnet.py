"""第 9 章的 XLNet 检查点。

xlnet_news：用 pretrain 命令做排列语言模型的预训练，除模型和目标外，参数与第 7 章的 bert_news 全同
（同一份数据、块长、批大小、学习率与调度、种子、单线程），每个样本预测的字数也相同（比例 0.4）。
步数按某一次、在某台机器上量的墙钟速度定（单线程、8 × 128 一步；BERT 每秒 9452 字、XLNet 6153 字，作为常量记在 SPEED；测量用的代码没有留在包里），
按这个比例，XLNet 一步的代价约是 BERT 的 1.54 倍，所以 BERT 的 22000 步对应 XLNet 的 14300 步。
墙钟时间靠不住（检查点里记的整次训练速度之比只有约 1.17）；按浮点运算数（BERT 的注意力按数学实现数，融合内核计数器数不到），XLNet 一步平均是 BERT 的约 1.47 倍（按前几十批平均；只看第一批是 1.45 倍），
14300 步约是 BERT 22000 步计算量的 0.95 倍（第 9、11 章打印这几种折算）。
"""
from dataclasses import replace

from recipes.bert import BERT
from recipes.common import RUNS, FineTuneGrid, history, pretrain

SPEED = {"bert": 9452, "xlnet": 6153}   # 某一次、在某台机器上量的每秒训练字数（单线程、墙钟；测量代码未保留），据此定 XLNet 的步数
XLNET = replace(BERT, model="xlnet", steps=14300)


def xlnet_news():
    """小 XLNet（4 层、C=128、4 头 × 32 维、后归一化，与小 BERT 同宽同深）在人民日报 + 评论文本上做排列语言模型。"""
    from lmcourse import data
    from lmcourse.ckpt import vocab_hash
    from lmcourse.models.xlnet import XLNetConfig, XLNetLMHeadModel

    state, config, metrics, text = pretrain("xlnet_news", XLNET)
    model = XLNetLMHeadModel(XLNetConfig.from_dict(config["model_config"]))
    model.load_state_dict(state)
    model.eval()
    a = config["args"]
    meta = {"config": config["model_config"], "vocab_hash": vocab_hash(data.bert_tokenizer()), "seed": a["seed"],
            "data": "与 bert_news 相同：人民日报 1998-01 训练集 + 评论训练集的文本（数字换成 #NUM#），流式打包成 128 字的块；"
                    "valid 为人民日报的留出划分（按原顺序打包，预测对象用固定种子选，比例 0.15）",
            "pretrain_command": text,
            "optimizer": f"AdamW（权重衰减 {a['weight_decay']}），学习率峰值 {a['lr']}，{a['warmup']} 升温后线性衰减，"
                         f"batch={a['batch_size']}，块长 {a['seq_len']}，预测比例 {a['mask_prob']}，"
                         f"目标 {a['objective']}，steps={a['steps']}",
            "tokens_seen": a["steps"] * a["batch_size"] * a["seq_len"], "train_seconds": metrics["train_seconds"],
            "tokens_per_second": metrics["tokens_per_second"], "layout": metrics.get("layout"), "speed_measured": SPEED,
            "history": history(metrics, ["train_loss", "valid_ppl", "valid_acc"], 4),
            "metrics": {f"{split}_{k}": round(v, 4) for split in ("valid", "test")
                        for k, v in plm_metrics(model, split).items()}}
    return model, meta


def plm_metrics(model, split, p=0.15):
    """人民日报某个划分上被预测字的困惑度与准确率：按原顺序打包成 128 字的块，预测对象（比例 p）用固定种子选，全部块都算。"""
    from lmcourse import data, objectives
    from lmcourse.pretrain import eval_batches

    tok = data.bert_tokenizer()
    objective = objectives.get("plm", tokenizer=tok, p=p)
    m = objective.metrics(model, eval_batches(objective, tok, True, 128, split=split, blocks=10 ** 9))
    return {"plm_ppl": m["valid_ppl"], "plm_acc": m["valid_acc"]}


# ---------- xlnet_sentiment ----------
# XLNet 与 BERT 用同一套微调设置（第 7 章采用的：平均池化、dropout 0，学习率 1e-3、批 32，微调 1 轮）各 3 个种子
XLNET_SENTIMENT = FineTuneGrid(seeds=(0, 1, 2), epochs=1.0)


def _sentiment_run(arm, seed, splits, tok):
    """一次微调（arm 为 xlnet 或 bert），返回 {valid_auc, test_auc, seconds}；结果缓存在 _build/checkpoint_runs/xlnet_sentiment/，
    所以两个进程可以分担，中途打断了也能接着算。arm = xlnet、种子 0 时另返回模型。"""
    import json

    from lmcourse import ckpt, metrics, num_threads, set_seed
    from lmcourse.finetune import FineTuneConfig, build_classifier, build_xlnet_classifier, fine_tune, predict

    path = RUNS / "xlnet_sentiment" / f"{arm}_{seed}.json"
    keep = arm == "xlnet" and seed == 0
    if path.exists() and not keep:
        return json.loads(path.read_text()), None
    ft = FineTuneConfig(pooling="mean", dropout=0.0, epochs=XLNET_SENTIMENT.epochs)
    set_seed(seed)
    num_threads(1)
    if arm == "xlnet":
        state, meta = ckpt.load_state("xlnet_news", tok)
        model = build_xlnet_classifier(ft, state, meta["config"])
    else:
        state, meta = ckpt.load_state("bert_news", tok)
        model = build_classifier(ft, {"config": meta["config"], "news": state})
    train, valid, test = splits
    hist, _ = fine_tune(model, train, valid, ft, tok, seed, desc=f"{arm} 微调（种子 {seed}）")
    row = {"valid_auc": round(hist.last["valid_auc"], 4),
           "test_auc": round(metrics.auc([d["label"] for d in test], predict(model, test)), 4),
           "seconds": round(hist.last["seconds"], 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))
    return row, (model if keep else None)


def _sentiment_splits():
    from lmcourse import data
    from lmcourse.finetune import preprocess

    tok = data.bert_tokenizer()
    raw = data.load_sentiment()
    return [preprocess(raw[s], tok) for s in ("train", "valid", "test")], tok


def bert_arm():
    """只算 BERT 那一组（可以在 XLNet 预训练的同时用另一个进程先算）。"""
    splits, tok = _sentiment_splits()
    for seed in XLNET_SENTIMENT.seeds:
        print(_sentiment_run("bert", seed, splits, tok)[0], flush=True)


def xlnet_sentiment():
    """xlnet_news 与 bert_news 在评论情感分类上各微调 3 个种子，记录验证 / 测试 AUC；存下的权重是 XLNet、种子 0 的那一个。"""
    import statistics
    from dataclasses import asdict

    from lmcourse import ckpt
    from lmcourse.finetune import FineTuneConfig

    splits, tok = _sentiment_splits()
    runs, keep = [], None
    for arm in ("xlnet", "bert"):
        for seed in XLNET_SENTIMENT.seeds:
            row, model = _sentiment_run(arm, seed, splits, tok)
            runs.append(dict(arm=arm, seed=seed, **row))
            keep = keep or model
    summary = {arm: {k: {"mean": round(statistics.mean(r[k] for r in runs if r["arm"] == arm), 4),
                         "sd": round(statistics.stdev(r[k] for r in runs if r["arm"] == arm), 4)}
                     for k in ("valid_auc", "test_auc")} for arm in ("xlnet", "bert")}
    pre = ckpt.info("xlnet_news")
    meta = {"config": pre["config"], "vocab_hash": pre["vocab_hash"], "pretrained_from": "xlnet_news",
            "data": "lmcourse.data.load_sentiment()（与第 7 章相同的划分）；[CLS] 评论 [SEP]，数字换成 #NUM#",
            "final_config": asdict(FineTuneConfig(pooling="mean", dropout=0.0, epochs=XLNET_SENTIMENT.epochs)),
            "runs": runs, "summary": summary, "seeds": list(XLNET_SENTIMENT.seeds),
            "train_seconds": round(sum(r["seconds"] for r in runs), 1),
            "metrics": {arm: summary[arm]["test_auc"]["mean"] for arm in ("xlnet", "bert")}}
    return keep, meta
