"""第 7 章的两个 BERT 检查点。

bert_news：用 pretrain 命令在人民日报 + 评论训练集的文本上做 MLM 预训练（前归一化的小 BERT）。
bert_sentiment：评论情感分类。先做技巧对比：从 bert_news 出发、同一个基线，每次只改一项，
每项用 3 个种子各微调同样的步数，在验证集上比 AUC（均值 ± 标准差），只采用提升超过噪声的改动；
再比三种初始化（随机、bert_news、bert_news 在评论文本上继续预训练），以及两种微调时长；
最终模型是验证集上选出的设置下 3 个种子的权重平均（模型汤），测试集只报告它。
各次微调可以用两个进程分担：一个进程 python -m lmcourse.ckpt bert_sentiment，
另一个 python -c "from recipes.bert import trick_grid; trick_grid(reverse=True)"（都在仓库的根目录运行）。
"""
import time
from dataclasses import asdict, dataclass, replace

from lmcourse._check import Config, check_type
from lmcourse.pretrain import Command, masked_metrics
from recipes.common import RUNS, check_seeds, history, pretrain

BERT = Command("bert", preset="small", corpus="both", steps=22000, batch_size=8, seq_len=128, lr=1e-3, schedule="linear",
               warmup=0.02, weight_decay=0.01, dropout=0.0, mask_prob=0.4, seed=0, eval_every=1000, threads=1)


# 选定 BERT 之前的逐项测量：从原版 BERT 的做法出发，每行比上一行多一项改动，其余相同（单线程、8 × 128 一步）
LEVER_BASE = Command("bert", preset="small", batch_size=8, seq_len=128, lr=1e-3, warmup=0.02, schedule="constant",
                     threads=1, seed=0, steps=600, eval_every=600)
LEVERS = tuple((name, replace(LEVER_BASE, **change)) for name, change in (
    ("原版 BERT：后归一化、dropout 0.1、MLM + NSP、遮 15%、只读新闻",
     dict(post_ln=True, dropout=0.1, objective="mlm_nsp", mask_prob=0.15, corpus="news")),
    ("+ 前归一化与 ALiBi", dict(dropout=0.1, objective="mlm_nsp", mask_prob=0.15, corpus="news")),
    ("+ 去掉 NSP，只做 MLM", dict(dropout=0.1, objective="mlm", mask_prob=0.15, corpus="news")),
    ("+ dropout 0", dict(dropout=0.0, objective="mlm", mask_prob=0.15, corpus="news")),
    ("+ 遮 40%", dict(dropout=0.0, objective="mlm", mask_prob=0.4, corpus="news")),
    ("+ 一开始就读评论文本（新闻 + 评论）", dict(dropout=0.0, objective="mlm", mask_prob=0.4, corpus="both")),
))
LEVER_SEEDS = (1, 2)          # 最后一行另用这两个种子各跑一次，量种子带来的波动


def lever_runs():
    """逐项测量的全部训练：(训练目录名, 行名, Command)，按表的顺序，最后是换种子的两次。"""
    runs = [(f"bert_levers/{i}", name, command) for i, (name, command) in enumerate(LEVERS)]
    name, command = LEVERS[-1]
    runs += [(f"bert_levers/seed{seed}", f"{name}（种子 {seed}）", replace(command, seed=seed)) for seed in LEVER_SEEDS]
    return runs


def levers():
    """逐项测量的表：每行一条 pretrain 命令，记验证集被遮字的困惑度（按 15% 掩码评估）与训练秒数。

    最后一行另用种子 1、2 各跑一次，给出种子带来的波动（noise），判断哪些差别超出了噪声。
    """
    rows = []
    for run, name, command in lever_runs():
        _, _, metrics, text = pretrain(run, command)
        rows.append({"name": name, "command": text, "valid_ppl": round(metrics["final"]["valid_ppl"], 1),
                     "valid_acc": round(metrics["final"]["valid_acc"], 4), "train_seconds": metrics["train_seconds"]})
    return rows


def bert_news():
    """小 BERT（4 层、H=128、前归一化 + ALiBi）在人民日报 + 评论文本上做 MLM（遮 40%）。"""
    lever_table = levers()
    model, meta = masked_lm_checkpoint(
        "bert_news", BERT, "人民日报 1998-01 训练集 + 评论训练集的文本（数字换成 #NUM#），流式打包成 128 字的块；"
                           "valid / test 为人民日报的留出划分，按原顺序打包、固定掩码")
    meta["levers"] = lever_table
    return model, meta


def masked_lm_checkpoint(run, command, data_note, objective_note=""):
    """BERT 结构的预训练检查点（bert_news、ernie_news 共用）：用 pretrain 命令训练，按逐字掩码在 valid / test 上重算指标，写下说明。"""
    from lmcourse import data
    from lmcourse.ckpt import vocab_hash
    from lmcourse.models.bert import BertConfig, BertForPreTraining

    state, config, metrics, text = pretrain(run, command)
    model = BertForPreTraining(BertConfig.from_dict(config["model_config"]))
    model.load_state_dict(state)
    model.eval()
    valid, test = masked_metrics(model, "valid"), masked_metrics(model, "test")
    a = config["args"]
    meta = {"config": config["model_config"], "vocab_hash": vocab_hash(data.bert_tokenizer()), "seed": a["seed"],
            "data": data_note, "pretrain_command": text,
            "optimizer": f"AdamW（权重衰减 {a['weight_decay']}），学习率峰值 {a['lr']}，{a['warmup']} 升温后线性衰减，"
                         f"batch={a['batch_size']}，块长 {a['seq_len']}，掩码比例 {a['mask_prob']}，"
                         f"目标 {a['objective']}{objective_note}，steps={a['steps']}",
            "tokens_seen": a["steps"] * a["batch_size"] * a["seq_len"], "train_seconds": metrics["train_seconds"],
            "tokens_per_second": metrics["tokens_per_second"], "layout": metrics.get("layout"),
            "history": history(metrics, ["train_loss", "valid_ppl", "valid_acc"], 4),
            "metrics": {"valid_mlm_ppl": round(valid["mlm_ppl"], 2), "valid_mlm_acc": round(valid["mlm_acc"], 4),
                        "test_mlm_ppl": round(test["mlm_ppl"], 2), "test_mlm_acc": round(test["mlm_acc"], 4)}}
    return model, meta


# ---------- bert_sentiment ----------
# 领域自适应的继续预训练（Gururangan 等 2020 的 TAPT）：从 bert_news 出发，只读评论训练集的文本（不看标签）再做 MLM
TAPT = replace(BERT, corpus="reviews", init="bert_news", steps=12000, eval_every=4000)
TRICKS = [  # (名称, 相对基线的改动)；基线用平均池化：只做 MLM 预训练时，[CLS] 后面的池化层没有训练过
    ("基线：平均池化 mean", {}),
    ("[CLS] 池化（论文的做法）", {"pooling": "cls"}),
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
# 技巧表每格微调 0.3 轮。微调的学习率（FineTuneConfig.lr = 1e-3）是先用基线、种子 0、0.3 轮在验证集上试出来的：
# 3e-4 → AUC 0.827，1e-3 → 0.869，2e-3 → 0.876，5e-3 → 0.844；取 1e-3，因为最终模型要训练更久，宁可稳一点。
@dataclass(frozen=True)
class SentimentGrid(Config):
    """bert_sentiment 的实验格子：每格的种子、技巧表与初始化对比各微调几轮、比较哪几种初始化，
    以及最终阶段比较的（学习率, 轮数）（训练更久时学习率减半）。"""

    seeds: tuple = (0, 1, 2)
    trick_epochs: float = 0.3
    gain_epochs: float = 1.0
    inits: tuple = ("scratch", "news", "reviews")
    schedules: tuple = ((1e-3, 1.0), (5e-4, 2.0))

    def __post_init__(self):
        check_seeds(self.seeds)
        check_type("inits", self.inits, tuple, "元组")
        check_type("schedules", self.schedules, tuple, "(学习率, 轮数) 的元组")


SENTIMENT = SentimentGrid()


def _cached_fine_tune(key, ft, seed, states, data_splits, tok, desc, init_seed=None, keep=False):
    """微调一次、返回验证集 AUC。结果缓存在 _build/checkpoint_runs/bert_sentiment/KEY_SEED.json（keep=True 时连权重 .pt），
    所以可以开几个进程分担（见 trick_grid），中途打断了也能接着算。

    seed 决定批次顺序；init_seed 决定分类层的初始化（默认同 seed）。模型汤要求各成员从同一个初始化出发。
    """
    import json

    import torch

    from lmcourse import num_threads, set_seed
    from lmcourse.finetune import build_classifier, fine_tune

    path = RUNS / "bert_sentiment" / f"{key}_{seed}.json"
    if path.exists() and (not keep or path.with_suffix(".pt").exists()):
        return json.loads(path.read_text())["valid_auc"]
    set_seed(seed if init_seed is None else init_seed)
    num_threads(1)
    model = build_classifier(ft, states)
    hist, _ = fine_tune(model, data_splits[0], data_splits[1], ft, tok, seed, desc=desc)
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep:
        torch.save(model.state_dict(), path.with_suffix(".pt"))
    path.write_text(json.dumps({"valid_auc": hist.last["valid_auc"], "seconds": hist.last["seconds"]}))
    return hist.last["valid_auc"]


def _trick_run(name, change, seed, base, states, data_splits, tok):
    """技巧表的一格：某一项改动、某个种子微调 trick_epochs 轮的验证集 AUC。"""
    return _cached_fine_tune(TRICKS.index((name, change)), replace(base, **change), seed, states, data_splits, tok,
                             f"{name}（种子 {seed}）")


def _gain_run(init, seed, base, grid, states, data_splits, tok):
    """初始化对比的一格：基线设置微调 gain_epochs 轮。"""
    ft = replace(base, epochs=grid.gain_epochs, init=init)
    return _cached_fine_tune(f"gain_{init}", ft, seed, states, data_splits, tok,
                             f"{init}，微调 {grid.gain_epochs} 轮（种子 {seed}）")


def _schedule_run(lr, epochs, seed, final, states, data_splits, tok):
    """最终阶段的一格：采用的设置、学习率 lr、微调 epochs 轮；分类层一律用种子 0 初始化，seed 只改批次顺序。"""
    return _cached_fine_tune(_final_key(final, lr, epochs), replace(final, lr=lr, epochs=epochs), seed, states,
                             data_splits, tok, f"学习率 {lr:g}、{epochs:g} 轮（种子 {seed}）", init_seed=0, keep=True)


def _final_key(final, lr, epochs):
    """最终阶段缓存文件名：写明与默认设置不同的各项，设置变了就不会读错缓存。"""
    from lmcourse.finetune import FineTuneConfig

    default = asdict(FineTuneConfig())
    changed = {k: v for k, v in asdict(replace(final, lr=lr, epochs=epochs)).items() if v != default[k]}
    return "final_" + "_".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(changed.items()))


def _setup(grid):
    """两个入口（trick_grid、bert_sentiment）共同的准备：数据、bert_news 与继续预训练后的权重、技巧表的基线设置。"""
    from lmcourse import data
    from lmcourse.finetune import FineTuneConfig, preprocess
    from lmcourse.models.bert import from_checkpoint as load_pretrained

    check_type("grid", grid, SentimentGrid, "SentimentGrid")
    tok = data.bert_tokenizer()
    raw = data.load_sentiment()
    splits = [preprocess(raw[s], tok) for s in ("train", "valid", "test")]
    pre, pre_meta = load_pretrained("bert_news")
    tapt_state, tapt_config, tapt_metrics, tapt_command = pretrain("bert_reviews", TAPT)
    states = {"config": pre_meta["config"], "news": pre.state_dict(), "reviews": tapt_state}
    tapt = {"command": tapt_command, "metrics": tapt_metrics, "args": tapt_config["args"]}
    return tok, splits, states, FineTuneConfig(pooling="mean", epochs=grid.trick_epochs), tapt


def _cells(grid, base):
    """全部微调的格子，按 bert_sentiment 计算的顺序：(函数, 参数)。"""
    final = replace(base, dropout=0.0, init="reviews")     # 预计的采用结果；猜错了，bert_sentiment 会自己补算
    cells = [(_trick_run, (name, change, seed, base)) for name, change in TRICKS for seed in grid.seeds]
    cells += [(_gain_run, (init, seed, base, grid)) for init in grid.inits for seed in grid.seeds]
    cells += [(_schedule_run, (lr, ep, seed, final)) for lr, ep in grid.schedules for seed in grid.seeds]
    return cells


def trick_grid(reverse=False, grid=SENTIMENT):
    """只算各格微调（不做最终的汤）；reverse=True 从最后一格往回算，与另一个进程分担。
    grid 的变体用 dataclasses.replace(SENTIMENT, …)，与 bert_sentiment 用同一个。"""
    tok, splits, states, base, _ = _setup(grid)
    cells = _cells(grid, base)
    for fn, args in reversed(cells) if reverse else cells:
        fn(*args, states, splits, tok)


def _stats(aucs):
    import statistics

    return {"valid_aucs": [round(a, 4) for a in aucs], "mean": round(statistics.mean(aucs), 4),
            "sd": round(statistics.stdev(aucs), 4)}


def bert_sentiment(grid=SENTIMENT):
    """技巧表（每行 3 个种子）→ 初始化对比 → 微调时长对比 → 模型汤作为最终模型。"""
    import torch

    from lmcourse import metrics, num_threads, set_seed
    from lmcourse.ckpt import vocab_hash
    from lmcourse.finetune import build_classifier, predict, soup
    from lmcourse.models.bert import BertConfig, BertForPreTraining

    t0 = time.perf_counter()
    tok, splits, states, base, tapt = _setup(grid)
    train, valid, test = splits
    y_valid, y_test = [d["label"] for d in valid], [d["label"] for d in test]
    # 1. 技巧表：从 bert_news 出发，0.3 轮
    table = []
    for name, change in TRICKS:
        aucs = [_trick_run(name, change, seed, base, states, splits, tok) for seed in grid.seeds]
        table.append({"name": name, "change": change, **_stats(aucs)})
        print(table[-1], flush=True)
    # 采用的改动：均值比基线高出两者标准差之和以上（同一项取最好的一个）
    base_row, best = table[0], {}
    for row in table[1:]:
        if row["mean"] - base_row["mean"] > row["sd"] + base_row["sd"]:
            for k, v in row["change"].items():
                if k not in best or row["mean"] > best[k][1]:
                    best[k] = (v, row["mean"])
    adopted = {k: v for k, (v, _) in best.items()}
    # 2. 初始化对比：基线设置，微调 gain_epochs 轮
    gain = {init: [round(_gain_run(init, seed, base, grid, states, splits, tok), 4) for seed in grid.seeds]
            for init in grid.inits}
    gain_stats = {k: _stats(v) for k, v in gain.items()}
    init = max(("news", "reviews"), key=lambda k: gain_stats[k]["mean"])
    # 3. 微调时长：两种（学习率, 轮数），各 3 个种子，分类层同一个初始化；验证集均值高的胜出
    final = replace(base, **adopted, init=init)
    schedules = [{"lr": lr, "epochs": ep, **_stats([_schedule_run(lr, ep, s, final, states, splits, tok)
                                                  for s in grid.seeds])} for lr, ep in grid.schedules]
    chosen = max(schedules, key=lambda r: r["mean"])
    final = replace(final, lr=chosen["lr"], epochs=chosen["epochs"])
    # 4. 最终模型：这 3 个模型的权重平均
    paths = [RUNS / "bert_sentiment" / f"{_final_key(final, final.lr, final.epochs)}_{s}.pt" for s in grid.seeds]
    set_seed(0)
    num_threads(1)
    model = build_classifier(final, states)
    model.load_state_dict(soup([torch.load(p, weights_only=True) for p in paths]))
    valid_scores, test_scores = predict(model, valid), predict(model, test)
    valid_auc = round(metrics.auc(y_valid, valid_scores), 4)
    t, _ = metrics.best_threshold(y_valid, valid_scores, "accuracy")
    # 继续预训练前后，被遮字的困惑度（15% 掩码）：评论验证集与人民日报测试集
    mlm = BertForPreTraining(BertConfig.from_dict(states["config"]))
    tapt_eval = {}
    for name in ("news", "reviews"):
        mlm.load_state_dict(states[name])
        mlm.eval()
        tapt_eval[name] = {"reviews_valid_ppl": round(masked_metrics(mlm, "valid", corpus="reviews")["mlm_ppl"], 2),
                           "news_test_ppl": round(masked_metrics(mlm, "test")["mlm_ppl"], 2)}
    a = tapt["args"]
    meta = {
        "config": states["config"], "vocab_hash": vocab_hash(tok), "seed": 0,
        "data": "lmcourse.data.load_sentiment()：去重、删掉矛盾文本后 8:1:1 分层划分；技巧在 valid 上比较，test 只报告最终模型",
        "pretrained_from": "bert_news",
        "tapt": {"command": tapt["command"], "steps": a["steps"], "tokens_seen": a["steps"] * a["batch_size"] * a["seq_len"],
                 "review_train_chars": sum(len(d["text"]) for d in train),
                 "train_seconds": tapt["metrics"]["train_seconds"], "masked_ppl": tapt_eval},
        "tricks": table, "trick_epochs": grid.trick_epochs, "seeds": list(grid.seeds), "adopted": adopted,
        "pretraining_gain": gain, "gain_epochs": grid.gain_epochs, "init": init,
        "schedules": schedules, "final_config": asdict(final),
        "soup": {"members_valid_auc": chosen["valid_aucs"], "valid_auc": valid_auc},
        "train_seconds": round(time.perf_counter() - t0, 1),
        "metrics": {"valid_auc": valid_auc,
                    "test_auc": round(metrics.auc(y_test, test_scores), 4),
                    "threshold": round(t, 4),
                    "test_acc@0.5": round(metrics.accuracy(y_test, [int(s >= 0.5) for s in test_scores]), 4),
                    "test_acc@threshold": round(metrics.accuracy(y_test, [int(s >= t) for s in test_scores]), 4)},
    }
    return model, meta
