"""BERT / GPT / XLNet 微调做评论情感分类：预处理、按长度分桶的批次、数据增强、微调（用 train.fit），命名实体识别的小工具，
以及把冻结的语言模型表示当特征（review_features）。

检查点 bert_sentiment 的配方（技巧逐项对比 + 最终模型）在仓库的 recipes/bert.py。
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lmcourse import ckpt, device_of, to_device
from lmcourse._check import Config, check_choice, check_int, check_number, check_type
from lmcourse.models.bert import POOLINGS, BertConfig, BertForSequenceClassification, collate, encode_pair
from lmcourse.models.elmo import encode_texts
from lmcourse.text import normalize_numbers, pad_batch

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
    """一批样本：句子分类的 labels 是 (B,)；命名实体识别的样本带 tags，labels 是 (B, T)，补齐处为 -100。"""
    batch = collate([(examples[i]["ids"], examples[i]["types"]) for i in index], pad_id)
    if "tags" in examples[index[0]]:
        batch["labels"] = torch.full(batch["input_ids"].shape, -100)                     # (B, T)
        for row, i in enumerate(index):
            batch["labels"][row, :len(examples[i]["tags"])] = torch.tensor(examples[i]["tags"])
    else:
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
    device = device_of(model)
    for index in length_batches(examples, batch_size, shuffle=False):
        b = to_device(make_batch(examples, index, pad), device)
        p = F.softmax(model(b["input_ids"], b["token_type_ids"], b["attention_mask"]), -1)[:, 1]
        for i, s in zip(index, p.tolist()):
            scores[i] = s
    return scores


def tfidf_baseline(reviews, splits=("valid", "test")):
    """经典基线：字的 1–2 元 TF-IDF 特征 + 逻辑回归（scikit-learn），在 reviews["train"] 上训练。

    返回 {"model": (向量化器, 分类器), 划分: 正面的概率, f"{划分}_auc": AUC}。
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from lmcourse import metrics

    check_type("reviews", reviews, dict, "load_sentiment() 那样的字典")
    for s in ("train", *splits):
        if s not in reviews:
            raise ValueError(f"参数 reviews 缺少划分 {s!r}")
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    X = vec.fit_transform([d["text"] for d in reviews["train"]])
    lr = LogisticRegression(C=4.0, max_iter=2000).fit(X, [d["label"] for d in reviews["train"]])
    out = {"model": (vec, lr)}
    for s in splits:
        out[s] = lr.predict_proba(vec.transform([d["text"] for d in reviews[s]]))[:, 1]
        out[f"{s}_auc"] = metrics.auc([d["label"] for d in reviews[s]], out[s])
    return out


@dataclass
class FineTuneConfig(Config):
    pooling: str = "cls"          # cls / mean / max / mean_max
    weight_decay: float = 0.01    # AdamW 的解耦权重衰减（对 Adam 类优化器它不等于 L2 正则）
    dropout: float = 0.1          # 编码器各层和分类层前的 dropout
    num_layers: int = 4           # 用前几个 Transformer 块
    augment: bool = False         # 训练时一半的批次换成增强过的文本
    init: str = "news"            # 权重的来源：news = bert_news 预训练的权重；scratch = 随机初始化
    epochs: float = 1.0
    lr: float = 1e-3              # 3e-4 在 0.3 轮之内学得太慢（试验见仓库的 recipes/bert.py）
    batch_size: int = 32
    aux_lm: float = 0.0           # GPT-1：分类损失再加 aux_lm 倍的语言模型损失（论文取 0.5）；BERT 不用

    def __post_init__(self):
        check_choice("ft.pooling", self.pooling, POOLINGS)
        check_type("ft.init", self.init, str, "字符串（权重的来源，如 news、scratch）")
        check_type("ft.augment", self.augment, bool, "布尔值")
        check_int("ft.num_layers", self.num_layers, minimum=1)
        check_int("ft.batch_size", self.batch_size, minimum=1)
        check_number("ft.epochs", self.epochs, minimum=0, strict=True)
        check_number("ft.lr", self.lr, minimum=0, strict=True)
        for name in ("weight_decay", "aux_lm"):
            check_number(f"ft.{name}", getattr(self, name), minimum=0)
        check_number("ft.dropout", self.dropout, minimum=0, maximum=0.99)


def build_classifier(ft, states):
    """按 FineTuneConfig 建分类模型；states 是 {'config': ..., 'news': BertForPreTraining 的预训练权重}。"""
    config = BertConfig.from_dict(dict(states["config"], hidden_dropout_prob=ft.dropout))   # 编码器各层与分类层用同一个 dropout
    model = BertForSequenceClassification(config, 2, pooling=ft.pooling, dropout=ft.dropout)
    if ft.init != "scratch":
        bert = {k[len("bert."):]: v for k, v in states[ft.init].items() if k.startswith("bert.")}
        model.bert.load_state_dict(bert)
    model.bert.layers = model.bert.layers[:ft.num_layers]
    return model


def build_gpt_classifier(ft, state, config):
    """GPT-1 式的分类模型：预训练的 GPT（state 为 None 时随机初始化）+ 抽取符处的线性分类器。"""
    from lmcourse.models.gpt import GPT, GPTClassifier, GPTConfig

    gpt = GPT(GPTConfig.from_dict(dict(config, dropout=ft.dropout)))
    if state is not None:
        gpt.load_state_dict(state)
    return GPTClassifier(gpt, 2, dropout=ft.dropout)


def build_xlnet_classifier(ft, state, config):
    """XLNet 的分类模型：预训练的 XLNet 主体（state 是 XLNetLMHeadModel 的权重，None 时随机初始化）+ 平均池化 + 线性层。"""
    from lmcourse.models.xlnet import XLNetClassifier, XLNetConfig, XLNetModel

    body = XLNetModel(XLNetConfig.from_dict(dict(config, dropout=ft.dropout)))
    if state is not None:
        body.load_state_dict({k[len("transformer."):]: v for k, v in state.items() if k.startswith("transformer.")})
    return XLNetClassifier(body, 2, dropout=ft.dropout)


def fine_tune(model, train, valid, ft, tokenizer, seed=0, progress=True, desc="微调"):
    """微调 ft.epochs 轮，结束时在验证集上评估。返回 (History, 验证集打分)。"""
    from lmcourse import metrics
    from lmcourse.train import adamw, fit, schedule

    gen = torch.Generator().manual_seed(seed)
    device = device_of(model)                               # 批次在 CPU 上建好，再搬到模型所在的设备
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
            return to_device(make_batch(aug, range(len(aug)), tokenizer.pad_id), device)
        return to_device(make_batch(train, index, tokenizer.pad_id), device)

    def loss_fn(m, b):                                       # (损失之和, 计数)：句子分类数句子，逐字标注数有标签的字
        y = b["labels"]
        if ft.aux_lm:                                        # GPT-1 的辅助目标：同一批文本上的语言模型损失（每字平均）
            logits, lm = m(b["input_ids"], b["token_type_ids"], b["attention_mask"], with_lm_loss=True)
            return F.cross_entropy(logits, y, reduction="sum") + ft.aux_lm * lm * len(y), len(y)
        logits = m(b["input_ids"], b["token_type_ids"], b["attention_mask"])   # (B, 类) 或逐字的 (B, T, 类)
        if logits.dim() == 3:
            return F.cross_entropy(logits.transpose(1, 2), y, reduction="sum"), int((y != -100).sum())
        return F.cross_entropy(logits, y, reduction="sum"), len(y)

    scores = []

    def eval_fn(m):
        if "tags" in valid[0]:                               # 命名实体识别：实体级 F1
            return {"valid_f1": ner_f1(m, valid)[2]}
        scores[:] = predict(m, valid)
        return {"valid_auc": metrics.auc([d["label"] for d in valid], scores)}

    opt = adamw(model, ft.lr, ft.weight_decay)
    history = fit(model, get_batch, loss_fn, steps, optimizer=opt, scheduler=schedule(opt, steps, warmup=0.1),
                  eval_fn=eval_fn, eval_every=steps, desc=desc, progress=progress)
    return history, scores


def _check_same_models(state_dicts):
    """soup 的参数检查：非空的 state_dict 列表，参数名和形状都相同。"""
    check_type("state_dicts", state_dicts, (list, tuple), "state_dict 的列表")
    if not state_dicts:
        raise ValueError("参数 state_dicts 为空，至少要一个模型")
    for i, sd in enumerate(state_dicts):
        check_type(f"state_dicts[{i}]", sd, dict, "state_dict")
        if list(sd) != list(state_dicts[0]) or any(sd[k].shape != v.shape for k, v in state_dicts[0].items()):
            raise ValueError(f"参数 state_dicts 的第 {i} 个与第 0 个的参数名或形状不一致，不是同一种模型")


def soup(state_dicts):
    """模型汤（uniform soup）：从同一个初始化微调出来的几个模型，逐个参数取平均，得到一个同样大小的模型。"""
    _check_same_models(state_dicts)
    first = state_dicts[0]
    return {k: torch.stack([sd[k].double() for sd in state_dicts]).mean(0).to(v.dtype)   # 浮点参数取平均
            if v.is_floating_point() else v for k, v in first.items()}

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


@torch.no_grad()
def predict_tags(model, examples, batch_size=128):
    """每个样本逐字的预测标签（字符串，不含 [CLS]/[SEP]）。"""
    model.eval()
    out, device = [None] * len(examples), device_of(model)
    for index in length_batches(examples, batch_size, shuffle=False):
        b = to_device(make_batch(examples, index, 0), device)
        best = model(b["input_ids"], b["token_type_ids"], b["attention_mask"]).argmax(-1)   # (B, T)
        for i, row in zip(index, best.tolist()):
            out[i] = [NER_TAGS[t] for t in row[1:len(examples[i]["ids"]) - 1]]
    return out


def ner_f1(model, examples):
    """实体级的 (精确率, 召回率, F1)：预测的 BIO 标签转成实体，与标注的实体比较。"""
    gold = [tags_to_spans([NER_TAGS[t] for t in d["tags"][1:-1]]) for d in examples]
    pred = [tags_to_spans(t) for t in predict_tags(model, examples)]
    return span_f1(gold, pred)


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


# ---------- 冻结的表示当特征：第 11 章和 frozen_sentiment 检查点 ----------
def review_features(kind, model, tokenizer, texts, batch_size=64):
    """冻结的表示在每条评论上取平均：lstm 取顶层隐藏状态 (N, H)；elmo 取 L+1 层各自的平均再拼接 (N, (L+1)·2d)。"""
    check_choice("kind", kind, ("lstm", "elmo"))
    if kind == "elmo":                                                  # 分块编码、当场取平均，不同时存下每个字的向量
        return torch.stack([r.mean(1).flatten() for i in range(0, len(texts), 1024)
                            for r in encode_texts(model, tokenizer, texts[i:i + 1024], batch_size)])
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))       # 按长度分批，少算填充
    out = [None] * len(texts)
    with torch.no_grad():
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            x, lengths = pad_batch([tokenizer.encode(texts[i]) or [tokenizer.unk_id] for i in idx], tokenizer.pad_id)
            h, _ = model.features(x)                                    # (B, T, H)：从左到右，右侧的填充不影响前面
            mask = (torch.arange(x.size(1)) < lengths[:, None]).float()  # (B, T)
            pooled = (h * mask[..., None]).sum(1) / lengths[:, None]     # (B, H)
            for b, i in enumerate(idx):
                out[i] = pooled[b]
    return torch.stack(out)


# ---------- 检查点：python -m lmcourse.ckpt bert_sentiment（配方见仓库的 recipes/bert.py） ----------
def from_checkpoint():
    """载入最终的情感分类模型，返回 (BertForSequenceClassification, meta)。"""
    def build(meta):
        ft = FineTuneConfig.from_dict(meta["final_config"])
        return BertForSequenceClassification(BertConfig.from_dict(meta["config"]), 2, pooling=ft.pooling,
                                             dropout=ft.dropout, num_layers=ft.num_layers)

    return ckpt.load("bert_sentiment", build)
