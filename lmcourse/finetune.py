"""BERT 微调做评论情感分类：预处理、按长度分桶的批次、数据增强、领域自适应预训练，以及比赛技巧的逐项对比。

检查点：python -m lmcourse.ckpt bert_sentiment（先要有 bert_news）。它做三件事：
1. 在评论训练集的文本上继续做 MLM（领域自适应预训练，DAPT），得到"读过评论"的 BERT；
2. 从同一个基线出发，每次只改一项（池化方式、权重衰减、dropout、层数、数据增强、DAPT、不预训练），
   各微调同样的步数，在验证集上比 AUC，结果写进 meta["tricks"]；
3. 把验证集上有帮助的改动合起来，训练更久，得到最终模型，在测试集上报告 AUC。
"""
import math
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F

from lmcourse._check import check_int, check_number, check_type
from lmcourse.masking import mask_tokens
from lmcourse.models.bert import (BertConfig, BertForPreTraining, BertForSequenceClassification, adamw, collate,
                                  encode_pair, warmup_linear)
from lmcourse.text import normalize_numbers

MAX_LEN = 128


def preprocess(items, tokenizer, max_len=MAX_LEN):
    """[{'text', 'label'}] -> [{'text', 'label', 'ids', 'types'}]：数字换成 #NUM#，加 [CLS]/[SEP]，超长截断。"""
    check_type("items", items, (list, tuple), "字典列表")
    out = []
    for i, d in enumerate(items):
        if not isinstance(d, dict) or "text" not in d:
            raise TypeError(f"参数 items 的第 {i} 项应为含 'text' 的字典，收到 {d!r:.60}")
        ids, types = encode_pair(tokenizer, normalize_numbers(d["text"]), max_len=max_len)
        out.append(dict(d, ids=ids, types=types))
    return out


def length_batches(examples, batch_size, generator=None, shuffle=True):
    """按长度分桶：先打乱，再在每 50 批的范围里按长度排序切批，批内补齐的 [PAD] 少得多。返回下标列表的列表。"""
    check_int("batch_size", batch_size, minimum=1)
    order = torch.randperm(len(examples), generator=generator).tolist() if shuffle else list(range(len(examples)))
    chunk = batch_size * 50
    batches = []
    for s in range(0, len(order), chunk):
        part = sorted(order[s:s + chunk], key=lambda i: len(examples[i]["ids"]))
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    if shuffle:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


def make_batch(examples, index, pad_id):
    batch = collate([(examples[i]["ids"], examples[i]["types"]) for i in index], pad_id)
    batch["labels"] = torch.tensor([examples[i]["label"] for i in index])
    return batch


def augment_text(text, generator=None, p_delete=0.1):
    """字级数据增强：每个字以 p_delete 概率删掉，再随机交换一对相邻的字。标签不变。"""
    check_type("text", text, str, "字符串")
    check_number("p_delete", p_delete, minimum=0, maximum=1)
    chars = list(text)
    keep = torch.rand(len(chars), generator=generator) >= p_delete
    chars = [c for c, k in zip(chars, keep.tolist()) if k] or chars[:1]
    if len(chars) > 1:
        i = int(torch.randint(0, len(chars) - 1, (1,), generator=generator))
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


@torch.no_grad()
def predict(model, examples, batch_size=128):
    """每条评论为正面的概率（softmax 的第 1 类）。"""
    model.eval()
    scores = [0.0] * len(examples)
    pad = 0
    for index in length_batches(examples, batch_size, shuffle=False):
        b = make_batch(examples, index, pad)
        p = F.softmax(model(b["input_ids"], b["token_type_ids"], b["attention_mask"]), -1)[:, 1]
        for i, s in zip(index, p.tolist()):
            scores[i] = s
    return scores


@dataclass
class FineTuneConfig:
    pooling: str = "cls"          # cls / mean / max / mean_max
    weight_decay: float = 0.01    # L2 正则（AdamW 的解耦权重衰减）
    dropout: float = 0.1          # 分类层前的 dropout
    num_layers: int = 4           # 用前几个 Transformer 块
    augment: bool = False         # 训练时一半的批次换成增强过的文本
    init: str = "news"            # news = 人民日报预训练；dapt = 再在评论上做 MLM；scratch = 随机初始化
    epochs: float = 1.0
    lr: float = 3e-4
    batch_size: int = 32


def build_classifier(ft, states):
    """按 FineTuneConfig 建分类模型；states 是 {'news': ..., 'dapt': ...} 预训练权重（BertForPreTraining 的）。"""
    config = BertConfig(**states["config"])
    model = BertForSequenceClassification(config, 2, pooling=ft.pooling, dropout=ft.dropout)
    if ft.init != "scratch":
        bert = {k[len("bert."):]: v for k, v in states[ft.init].items() if k.startswith("bert.")}
        model.bert.load_state_dict(bert)
    model.bert.layers = model.bert.layers[:ft.num_layers]
    return model


def fine_tune(model, train, valid, ft, tokenizer, seed=0, progress=True, desc="微调"):
    """微调 ft.epochs 轮，结束时在验证集上评估。返回 (History, 验证集打分)。"""
    from lmcourse import metrics
    from lmcourse.train import fit

    gen = torch.Generator().manual_seed(seed)
    per_epoch = math.ceil(len(train) / ft.batch_size)
    steps = max(1, int(per_epoch * ft.epochs))
    plan = []

    def get_batch(step):
        nonlocal plan
        if not plan:
            plan = length_batches(train, ft.batch_size, gen)
        index = plan.pop()
        if ft.augment and step % 2 == 0:
            aug = preprocess([{"text": augment_text(train[i]["text"], gen), "label": train[i]["label"]}
                              for i in index], tokenizer)
            return make_batch(aug, range(len(aug)), tokenizer.pad_id)
        return make_batch(train, index, tokenizer.pad_id)

    def loss_fn(m, b):
        return F.cross_entropy(m(b["input_ids"], b["token_type_ids"], b["attention_mask"]), b["labels"])

    scores = []

    def eval_fn(m):
        scores[:] = predict(m, valid)
        return {"valid_auc": metrics.auc([d["label"] for d in valid], scores)}

    opt = adamw(model, ft.lr, ft.weight_decay)
    history = fit(model, get_batch, loss_fn, steps, optimizer=opt, scheduler=warmup_linear(opt, steps),
                  eval_fn=eval_fn, eval_every=steps, desc=desc, progress=progress)
    return history, scores


def dapt(model, texts, tokenizer, steps, batch_size=32, lr=3e-4, seed=0, progress=True):
    """领域自适应预训练：在评论文本上继续做 MLM（没有句对，不做 NSP）。返回 History。"""
    from lmcourse.train import fit

    gen = torch.Generator().manual_seed(seed)
    encoded = [{"ids": encode_pair(tokenizer, normalize_numbers(t))[0]} for t in texts]
    plan = []

    def get_batch(step):
        nonlocal plan
        if not plan:
            plan = length_batches(encoded, batch_size, gen)
        rows = [(encoded[i]["ids"], [0] * len(encoded[i]["ids"])) for i in plan.pop()]
        b = collate(rows, tokenizer.pad_id)
        b["input_ids"], b["mlm_labels"] = mask_tokens(b["input_ids"], tokenizer, generator=gen)
        return b

    opt = adamw(model, lr)
    return fit(model, get_batch, lambda m, b: m.loss(b)[0], steps, optimizer=opt,
               scheduler=warmup_linear(opt, steps), desc="评论上的 MLM", progress=progress)


# ---------- 命名实体识别：人民日报的 nr / ns / nt，按字打 BIO 标签 ----------
NER_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def ner_examples(pairs, tokenizer, max_len=MAX_LEN):
    """[(文本, [(start, end, 类型)])] -> [{'ids', 'types', 'tags'}]：一个字一个 token，[CLS]/[SEP] 处标签为 -100。

    这里不把数字换成 #NUM#，以保证字与 token 一一对应（数字多半是 [UNK]，不影响实体）。
    """
    out = []
    for text, spans in pairs:
        text = text[:max_len - 2]
        tags = ["O"] * len(text)
        for s, e, kind in spans:
            if e <= len(text):
                tags[s] = f"B-{kind}"
                for i in range(s + 1, e):
                    tags[i] = f"I-{kind}"
        ids = [tokenizer.cls_id] + [tokenizer.stoi.get(c, tokenizer.unk_id) for c in text] + [tokenizer.sep_id]
        out.append({"ids": ids, "types": [0] * len(ids), "tags": [-100] + [NER_TAGS.index(t) for t in tags] + [-100]})
    return out


def tags_to_spans(tags):
    """BIO 标签序列（字符串）-> 实体集合 {(start, end, 类型)}；孤立的 I- 当作新实体的开头。"""
    spans, start, kind = set(), None, None
    for i, t in enumerate(list(tags) + ["O"]):
        if t.startswith("I-") and start is not None and t[2:] == kind:
            continue
        if start is not None:
            spans.add((start, i, kind))
            start = kind = None
        if t != "O":
            start, kind = i, t[2:]
    return spans


def span_f1(gold, pred):
    """实体级的精确率、召回率、F1：边界和类型都对才算对。gold / pred 是每句的实体集合列表。"""
    tp = sum(len(g & p) for g, p in zip(gold, pred))
    n_pred, n_gold = sum(map(len, pred)), sum(map(len, gold))
    precision, recall = tp / max(n_pred, 1), tp / max(n_gold, 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


# ---------- 检查点：python -m lmcourse.ckpt bert_sentiment ----------
TRICKS = [  # (名称, 相对基线的改动)
    ("基线：[CLS] 池化", {}),
    ("平均池化 mean", {"pooling": "mean"}),
    ("最大池化 max", {"pooling": "max"}),
    ("拼接 mean_max", {"pooling": "mean_max"}),
    ("不做权重衰减", {"weight_decay": 0.0}),
    ("权重衰减 0.1", {"weight_decay": 0.1}),
    ("不用 dropout", {"dropout": 0.0}),
    ("dropout 0.3", {"dropout": 0.3}),
    ("只用 2 个 Transformer 块", {"num_layers": 2}),
    ("数据增强（删字、换序）", {"augment": True}),
    ("领域自适应预训练（评论 MLM）", {"init": "dapt"}),
    ("不预训练（随机初始化）", {"init": "scratch"}),
]
SENTIMENT = dict(dapt_steps=800, final_dapt_steps=2500, final_epochs=4.0)


def from_checkpoint():
    """载入最终的情感分类模型，返回 (BertForSequenceClassification, meta)。"""
    from lmcourse import ckpt, data

    state, meta = ckpt.load_state("bert_sentiment", data.bert_tokenizer())
    ft = FineTuneConfig(**meta["final_config"])
    model = BertForSequenceClassification(BertConfig(**meta["config"]), 2, pooling=ft.pooling, dropout=ft.dropout,
                                          num_layers=ft.num_layers)
    model.load_state_dict(state)
    return model.eval(), meta


def train_checkpoint(seed=0, **overrides):
    from lmcourse import ckpt, data, metrics, set_seed
    from lmcourse.models.bert import from_checkpoint as load_pretrained

    hp = dict(SENTIMENT, **overrides)
    t0 = time.perf_counter()
    tok = data.bert_tokenizer()
    raw = data.load_sentiment()
    train, valid, test = (preprocess(raw[s], tok) for s in ("train", "valid", "test"))
    pre, pre_meta = load_pretrained("bert_news")
    states = {"config": pre_meta["config"], "news": {k: v.clone() for k, v in pre.state_dict().items()}}
    set_seed(seed)
    dapt_history = dapt(pre, [d["text"] for d in raw["train"]], tok, hp["dapt_steps"], seed=seed)
    states["dapt"] = pre.state_dict()
    base = FineTuneConfig()
    table = list(hp.get("reuse_tricks") or [])          # reuse_tricks：沿用已算好的技巧表，只重做最终阶段
    for name, change in TRICKS[len(table):]:
        set_seed(seed)
        ft = replace(base, **change)
        model = build_classifier(ft, states)
        history, scores = fine_tune(model, train, valid, ft, tok, seed, desc=name)
        y = [d["label"] for d in valid]
        row = {"name": name, "change": change, "valid_auc": round(history.last["valid_auc"], 4),
               "valid_acc@0.5": round(metrics.accuracy(y, [int(s >= 0.5) for s in scores]), 4),
               "seconds": round(history.last["seconds"], 1)}
        t, acc = metrics.best_threshold(y, scores, "accuracy")
        row["best_threshold"], row["valid_acc@best"] = round(t, 4), round(acc, 4)
        table.append(row)
        print(row, flush=True)
    # 最终模型：验证集上胜过基线的改动合起来（同一项取最好的一个），训练更久
    best = {}
    for row in table[1:]:
        for k, v in row["change"].items():
            if row["valid_auc"] > table[0]["valid_auc"] and (k not in best or row["valid_auc"] > best[k][1]):
                best[k] = (v, row["valid_auc"])
    final = replace(base, epochs=hp["final_epochs"], **{k: v for k, (v, _) in best.items()})
    final_dapt = None
    if final.init == "dapt" and hp["final_dapt_steps"] > hp["dapt_steps"]:   # 领域自适应预训练有用：最终模型再多读几遍评论
        set_seed(seed)
        final_dapt = dapt(pre, [d["text"] for d in raw["train"]], tok, hp["final_dapt_steps"] - hp["dapt_steps"],
                          seed=seed + 1)
        states["dapt"] = pre.state_dict()
    set_seed(seed)
    model = build_classifier(final, states)
    history, valid_scores = fine_tune(model, train, valid, final, tok, seed, desc="最终模型")
    test_scores = predict(model, test)
    y_valid, y_test = [d["label"] for d in valid], [d["label"] for d in test]
    t, _ = metrics.best_threshold(y_valid, valid_scores, "accuracy")
    meta = {
        "config": pre_meta["config"], "vocab_hash": ckpt.vocab_hash(tok), "seed": seed,
        "data": "lmcourse.data.load_sentiment()：去重、删掉矛盾文本后 8:1:1 分层划分；技巧在 valid 上比较，test 只报告最终模型",
        "pretrained_from": "bert_news", "dapt_steps": hp["dapt_steps"], "final_dapt_steps": hp["final_dapt_steps"],
        "dapt_history": dapt_history.records, "tricks": table,
        "final_dapt_history": final_dapt.records if final_dapt else None,
        "final_config": asdict(final),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "metrics": {"valid_auc": round(history.last["valid_auc"], 4),
                    "test_auc": round(metrics.auc(y_test, test_scores), 4),
                    "threshold": round(t, 4),
                    "test_acc@0.5": round(metrics.accuracy(y_test, [int(s >= 0.5) for s in test_scores]), 4),
                    "test_acc@threshold": round(metrics.accuracy(y_test, [int(s >= t) for s in test_scores]), 4)},
    }
    return model, meta
