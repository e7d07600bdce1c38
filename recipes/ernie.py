"""第 10 章的 ERNIE 检查点。

ernie_news：用 pretrain 命令做 ERNIE 1.0 的知识掩码预训练。模型、数据、步数、种子、学习率与调度与第 7 章的
bert_news 全同（ERNIE 只把 BERT 的模型名换掉），只有掩码不同：前三分之一逐字遮（与 BERT 相同），
中间三分之一整词遮，最后三分之一整个人名、地名、机构名一起遮（见 lmcourse.objectives.KnowledgeMasking）。
"""
from dataclasses import dataclass, replace

from lmcourse._check import check_type
from recipes.bert import BERT, masked_lm_checkpoint
from recipes.common import RUNS, FineTuneGrid

ERNIE = replace(BERT, model="ernie")


def ernie_news():
    """小 ERNIE（结构与小 BERT 相同）在人民日报 + 评论文本上做知识掩码预训练。"""
    return masked_lm_checkpoint(
        "ernie_news", ERNIE,
        "与 bert_news 相同：人民日报 1998-01 训练集 + 评论训练集的文本（数字换成 #NUM#），流式打包成 128 字的块；"
        "词与实体由 jieba.posseg 在每块上切分；valid / test 为人民日报的留出划分，按原顺序打包、逐字的固定掩码（与 bert_news 同一口径）",
        "（逐字 → 整词 → 实体，各三分之一）")


# ---------- ernie_tasks ----------
# BERT 与 ERNIE 用同一套微调设置：情感分类与第 9 章相同（平均池化、dropout 0、学习率 1e-3、批 32、1 轮）；
# 命名实体识别在人民日报的 nr / ns / nt 上逐字打 BIO 标签，同样的学习率、批大小、dropout，1 轮。各 3 个种子。
@dataclass(frozen=True)
class TaskGrid(FineTuneGrid):
    """ernie_tasks 的格子：任务 × 对比的两方（检查点 ARM_news）× 种子。"""

    arms: tuple = ("ernie", "bert")
    tasks: tuple = ("sentiment", "ner")

    def __post_init__(self):
        super().__post_init__()
        check_type("arms", self.arms, tuple, "元组")
        check_type("tasks", self.tasks, tuple, "元组")


TASKS = TaskGrid(seeds=(0, 1, 2), epochs=1.0)


def _task_data(task):
    from lmcourse import data
    from lmcourse.finetune import ner_examples, preprocess

    tok = data.bert_tokenizer()
    if task == "sentiment":
        raw = data.load_sentiment()
        return [preprocess(raw[s], tok) for s in ("train", "valid", "test")], tok
    return [ner_examples(data.peoples_daily_entities(s), tok) for s in ("train", "valid", "test")], tok


def _task_run(arm, task, seed, splits, tok, keep=False):
    """一次微调，返回 ({valid, test, seconds}, 模型或 None)（情感为 AUC，实体识别为实体级 F1）；结果缓存在
    _build/checkpoint_runs/ernie_tasks/，几个进程可以分担。keep=True 时总是重新训练并返回模型。"""
    import json

    from lmcourse import ckpt, metrics, num_threads, set_seed
    from lmcourse.finetune import (NER_TAGS, FineTuneConfig, build_classifier, fine_tune, ner_f1, predict)
    from lmcourse.models.bert import BertConfig, BertForTokenClassification

    path = RUNS / "ernie_tasks" / f"{task}_{arm}_{seed}.json"
    if path.exists() and not keep:
        return json.loads(path.read_text()), None
    ft = FineTuneConfig(pooling="mean", dropout=0.0, epochs=TASKS.epochs)
    state, meta = ckpt.load_state(f"{arm}_news", tok)
    set_seed(seed)
    num_threads(1)
    if task == "sentiment":
        model = build_classifier(ft, {"config": meta["config"], "news": state})
    else:
        model = BertForTokenClassification(BertConfig.from_dict(dict(meta["config"], hidden_dropout_prob=ft.dropout)),
                                           len(NER_TAGS), dropout=ft.dropout)
        model.bert.load_state_dict({k[len("bert."):]: v for k, v in state.items() if k.startswith("bert.")})
    train, valid, test = splits
    hist, _ = fine_tune(model, train, valid, ft, tok, seed, desc=f"{arm} {task}（种子 {seed}）")
    if task == "sentiment":
        row = {"valid": hist.last["valid_auc"], "test": metrics.auc([d["label"] for d in test], predict(model, test))}
    else:
        row = {"valid": hist.last["valid_f1"], "test": ner_f1(model, test)[2]}
    row = {k: round(v, 4) for k, v in row.items()}
    row["seconds"] = round(hist.last["seconds"], 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))
    return row, (model if keep else None)


def task_cells(reverse=False):
    """只算各格（可以开两个进程，一个 reverse=True 从表尾往回算）。"""
    cells = [(task, arm, seed) for task in TASKS.tasks for arm in TASKS.arms for seed in TASKS.seeds]
    data_cache = {}
    for task, arm, seed in reversed(cells) if reverse else cells:
        if task not in data_cache:
            data_cache[task] = _task_data(task)
        print(task, arm, seed, _task_run(arm, task, seed, *data_cache[task])[0], flush=True)


def ernie_tasks():
    """ernie_news 与 bert_news 在情感分类和命名实体识别上各微调 3 个种子；存下的权重是 ERNIE 做实体识别、种子 0 的那一个。"""
    import statistics

    from lmcourse import ckpt

    runs, keep = [], None
    for task in TASKS.tasks:
        splits, tok = _task_data(task)
        for arm in TASKS.arms:
            for seed in TASKS.seeds:
                row, model = _task_run(arm, task, seed, splits, tok, keep=(task, arm, seed) == ("ner", "ernie", 0))
                runs.append(dict(task=task, arm=arm, seed=seed, **row))
                keep = keep or model
    summary = {f"{task}_{arm}": {k: {"mean": round(statistics.mean(r[k] for r in rows), 4),
                                     "sd": round(statistics.stdev(r[k] for r in rows), 4)} for k in ("valid", "test")}
               for task in TASKS.tasks for arm in TASKS.arms
               for rows in [[r for r in runs if r["task"] == task and r["arm"] == arm]]}
    pre = ckpt.info("ernie_news")
    meta = {"config": pre["config"], "vocab_hash": pre["vocab_hash"], "pretrained_from": "ernie_news / bert_news",
            "data": "情感：lmcourse.data.load_sentiment()（与第 7 章相同的划分），指标 AUC；实体识别：lmcourse.data."
                    "peoples_daily_entities 的 train / valid / test，逐字 BIO 标签，指标实体级 F1（边界与类型都对）",
            "fine_tune": "平均池化（情感）、dropout 0、学习率 1e-3、批 32、1 轮，各 3 个种子", "runs": runs,
            "summary": summary, "seeds": list(TASKS.seeds), "train_seconds": round(sum(r["seconds"] for r in runs), 1),
            "metrics": {k: v["test"]["mean"] for k, v in summary.items()}}
    return keep, meta
