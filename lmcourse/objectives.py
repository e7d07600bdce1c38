"""预训练目标：把一批 token id 变成损失和指标的小对象，插进 train.fit 这一个训练循环里。

每个目标提供：
- chunk_len(seq_len)：从打包好的 token 流里每个样本取多长一段；
- make_batch(chunks, example_ids, seed)：(B, L) 的 id -> 模型的输入字典（掩码只由 (seed, 样本编号) 决定）；
- __call__(model, batch, stats=None)：(损失之和, 要预测的 token 数)，正是 train.fit 和 evaluate 要的 loss_fn；
  给了字典 stats 时，顺便把准确率之类的统计加进去（只在评估时要）；
- metrics(model, batches)：在固定的留出批次上的指标；子类只需改写 summarize(损失之和, token 数, 统计之和)。
新目标（GPT 的因果语言模型、XLNet 的排列语言模型、ERNIE 的知识掩码）只需写一个这样的类并 register。
"""

from types import MappingProxyType

import torch
import torch.nn.functional as F

from lmcourse._check import check_choice, check_int, check_number
from lmcourse.metrics import perplexity
from lmcourse.train import evaluate

_REGISTERED = {}
OBJECTIVES = MappingProxyType(_REGISTERED)   # 名字 -> 目标类；只读，登记只经过下面的 register


def register(name):
    """类装饰器：把目标登记到 OBJECTIVES[name]（同名再登记一次会替换，笔记本里重跑一个单元不出错）。"""
    def wrap(cls):
        cls.name = name
        _REGISTERED[name] = cls
        return cls
    return wrap


def get(name, **kwargs):
    """按名字建一个目标，例如 get("mlm", p=0.15)。"""
    return OBJECTIVES[check_choice("name", name, tuple(OBJECTIVES))](**kwargs)


def _add(stats, **values):
    for k, v in values.items():
        stats[k] = stats.get(k, 0) + v


def example_generator(seed, example_id):
    """第 example_id 个样本专用的随机数发生器：掩码只由 (种子, 样本编号) 决定，与进程数无关。"""
    return torch.Generator().manual_seed((seed * 1_000_003 + example_id * 7919 + 17) % (2 ** 63))


class Objective:
    """目标的基类：默认每段都是连续的 token，没有掩码。"""

    @classmethod
    def build(cls, tokenizer, model_config, mask_prob=0.15, total_examples=None):
        """pretrain 命令用它建目标：新目标按需取用字表、模型配置、掩码比例和训练的总样本数。"""
        return cls()

    def chunk_len(self, seq_len):
        return seq_len

    def make_batch(self, chunks, example_ids, seed, others=None):
        return {"ids": chunks}

    def __call__(self, model, batch, stats=None):
        raise NotImplementedError

    def metrics(self, model, batches):
        """留出批次上的指标：用训练循环旁的 evaluate 累加损失之和与 token 数，__call__ 把各项统计加进 sums，一起交给 summarize。"""
        sums = {}
        total, n = evaluate(model, batches, lambda m, b: self(m, b, sums), totals=True)
        return self.summarize(total, n, sums)

    def summarize(self, total, n, sums):
        """平均损失（每个被预测的 token）和困惑度。"""
        return {"valid_loss": total / n, "valid_ppl": perplexity(total / n)}


@register("causal_lm")
class CausalLM(Objective):
    """从左到右的语言模型：用前面的字预测下一个字（NNLM 看固定的 n-1 个字，RNN / LSTM 看全部上文）。"""

    def __init__(self, context=0):
        self.context = context               # NNLM 的窗口；0 表示模型自己带状态（RNN / LSTM）

    @classmethod
    def build(cls, tokenizer, model_config, mask_prob=0.15, total_examples=None):
        return cls(context=getattr(model_config, "context", 0))

    def chunk_len(self, seq_len):
        return seq_len + max(self.context, 1)  # 多取的开头几个字只作上文

    def __call__(self, model, batch, stats=None):
        x = batch["ids"]                                                   # (B, L)
        if self.context:                                                   # NNLM：每个位置一个窗口
            n = self.context
            ctx = x.unfold(1, n, 1)[:, :-1].reshape(-1, n)                 # (B·T, n)
            y = x[:, n:].reshape(-1)                                       # (B·T,)
            return F.cross_entropy(model(ctx), y, reduction="sum"), len(y)
        loss, _ = model.nll(x[:, :-1], x[:, 1:])                           # 平均损失
        return loss * x[:, 1:].numel(), x[:, 1:].numel()


@register("bilm")
class BiLMObjective(Objective):
    """ELMo 的双向语言模型：前向预测下一个字、后向预测上一个字，两个损失相加。"""

    def __call__(self, model, batch, stats=None):
        loss_f, loss_b = model.nll(batch["ids"])                           # 各为平均损失
        n = batch["ids"][:, 1:].numel()
        if stats is not None:
            _add(stats, forward_loss=loss_f.item() * n, backward_loss=loss_b.item() * n)
        return (loss_f + loss_b) * n, n

    def summarize(self, total, n, sums):
        """两个方向各自的留出困惑度。"""
        f, b = sums["forward_loss"] / n, sums["backward_loss"] / n
        return {"valid_loss": f + b, "valid_ppl_forward": perplexity(f), "valid_ppl_backward": perplexity(b)}


@register("mlm")
class MaskedLM(Objective):
    """BERT 的掩码语言模型：[CLS] + 一段连续文本，按 80/10/10 遮住比例 p 的字，只在被选中的位置算损失。"""

    nsp = False

    def __init__(self, tokenizer, p=0.15):
        self.tokenizer = tokenizer
        self.p = check_number("p", p, minimum=0, maximum=1, strict=True)

    @classmethod
    def build(cls, tokenizer, model_config, mask_prob=0.15, total_examples=None):
        return cls(tokenizer, mask_prob)

    def chunk_len(self, seq_len):
        return seq_len - 1                                                 # 前面留给 [CLS]

    def mask_row(self, row, example_id, seed):
        """一行 (T,) 的掩码：返回 ((1, T) 的输入, (1, T) 的 labels)。子类（ERNIE）改写它换掩码的单位。"""
        from lmcourse.masking import mask_tokens

        return mask_tokens(row[None], self.tokenizer, self.p, example_generator(seed, example_id))

    def make_batch(self, chunks, example_ids, seed, others=None):
        tok = self.tokenizer
        B, L = chunks.shape
        ids = torch.cat([torch.full((B, 1), tok.cls_id), chunks], 1)        # (B, T)
        types = torch.zeros_like(ids)
        batch = {}
        if self.nsp:                                                       # [CLS] A [SEP] B：B 一半换成别处的文本
            k = (L + 1) // 2
            gens = [example_generator(seed + 1, e) for e in example_ids]
            real = torch.tensor([bool(torch.rand(1, generator=g) < 0.5) for g in gens])
            ids[:, k] = tok.sep_id
            ids[~real, k + 1:] = others[~real, k:]
            types[:, k + 1:] = 1
            batch["nsp_labels"] = real.long()
        rows = [self.mask_row(row, e, seed) for row, e in zip(ids, example_ids)]
        batch["input_ids"] = torch.cat([r[0] for r in rows])                # (B, T)
        batch["mlm_labels"] = torch.cat([r[1] for r in rows])               # (B, T)，-100 = 不预测
        batch["token_type_ids"] = types
        return batch

    def __call__(self, model, batch, stats=None):
        picked = batch["mlm_labels"] != -100                               # 只在被选中的位置出打分 (N, V)
        logits, nsp_logits = model(batch["input_ids"], batch["token_type_ids"], None, picked)
        target = batch["mlm_labels"][picked]                               # (N,)
        loss = F.cross_entropy(logits, target, reduction="sum")
        if stats is not None:
            _add(stats, mlm_loss=loss.item(), mlm_correct=int((logits.argmax(-1) == target).sum()))
        if self.nsp:                                                       # NSP 每个样本的权重 = 平均每个样本被遮的字数
            weight = self.p * batch["input_ids"].size(1)
            loss = loss + weight * F.cross_entropy(nsp_logits, batch["nsp_labels"], reduction="sum")
            if stats is not None:
                _add(stats, nsp_hits=int((nsp_logits.argmax(-1) == batch["nsp_labels"]).sum()),
                     nsp_n=len(batch["nsp_labels"]))
        return loss, len(target)

    def summarize(self, total, n, sums):
        """被遮位置上的平均损失、困惑度、准确率（有 NSP 时另给 NSP 准确率）。"""
        loss = sums["mlm_loss"] / n
        out = {"valid_loss": loss, "valid_ppl": perplexity(loss), "valid_acc": sums["mlm_correct"] / n}
        if sums.get("nsp_n"):
            out["valid_nsp_acc"] = sums["nsp_hits"] / sums["nsp_n"]
        return out


@register("mlm_nsp")
class MaskedLMWithNSP(MaskedLM):
    """BERT 原版的两个任务：掩码语言模型 + 下一句预测（NSP）。"""

    nsp = True


@register("plm")
class PermutationLM(MaskedLM):
    """XLNet 的排列语言模型：[CLS] + 一段连续文本，输入不做任何替换（没有 [MASK]）。

    每个样本随机选比例 p 的普通字作预测对象（部分预测，1/K = p），排在分解顺序的最后、彼此按随机顺序；
    其余的字只作上文，彼此都看得见。查询流在预测对象的位置上按顺序逐个预测，损失只算在预测对象上。
    """

    def __init__(self, tokenizer, p=1 / 6):                               # 输入、块长、指标与 MLM 相同
        super().__init__(tokenizer, p)

    def make_batch(self, chunks, example_ids, seed, others=None):
        from lmcourse.masking import sample_permutation

        B = chunks.size(0)
        ids = torch.cat([torch.full((B, 1), self.tokenizer.cls_id), chunks], 1)   # (B, T)
        T = ids.size(1)
        masks, maps, labels = zip(*(sample_permutation(row, self.tokenizer, self.p, example_generator(seed, e))
                                    for row, e in zip(ids, example_ids)))
        Pmax = max(len(y) for y in labels)                                 # 各行的预测个数可能差一两个：补齐
        target_mapping = torch.zeros(B, Pmax, T)
        plm_labels = torch.full((B, Pmax), -100, dtype=torch.long)
        for b, (tm, y) in enumerate(zip(maps, labels)):
            target_mapping[b, :len(y)], plm_labels[b, :len(y)] = tm, y
        return {"input_ids": ids, "perm_mask": torch.stack(masks), "target_mapping": target_mapping,
                "plm_labels": plm_labels}

    def __call__(self, model, batch, stats=None):
        logits, _ = model(batch["input_ids"], perm_mask=batch["perm_mask"],
                          target_mapping=batch["target_mapping"])          # (B, P, V)
        y = batch["plm_labels"]                                            # (B, P)，-100 = 补齐的空位
        loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="sum")
        if stats is not None:
            _add(stats, mlm_loss=loss.item(), mlm_correct=int(((logits.argmax(-1) == y) & (y != -100)).sum()))
        return loss, int((y != -100).sum())


@register("ernie")
class KnowledgeMasking(MaskedLM):
    """ERNIE 1.0 的知识掩码：与 mlm 相同的输入和损失，只是遮的单位分三个阶段由小到大。

    按样本编号把训练等分成三段（ERNIE 1.0 的做法：先基本级、再短语级、最后实体级）：
    第一段逐字遮（与 BERT 完全相同），第二段整词遮，第三段整个人名、地名、机构名一起遮。
    词和实体由 jieba.posseg 在每块文本上现切（评论没有人工标注；新闻也用同一个切分器，两种语料一个口径）。
    total_examples（训练的总样本数）由 pretrain 命令给出；没给时（例如留出评估）一律逐字遮，与 BERT 的评估相同。
    """

    LEVELS = ("char", "phrase", "entity")

    def __init__(self, tokenizer, p=0.15, total_examples=None):
        super().__init__(tokenizer, p)
        if total_examples is not None:
            check_int("total_examples", total_examples, minimum=1)
        self.total = total_examples

    @classmethod
    def build(cls, tokenizer, model_config, mask_prob=0.15, total_examples=None):
        return cls(tokenizer, mask_prob, total_examples)

    def level(self, example_id):
        if self.total is None:
            return "char"
        return self.LEVELS[min(2, example_id * 3 // self.total)]

    def spans(self, ids, level):
        """一行 id 的遮盖单位：先还原成文本（特殊 token 换成 □，一字一 token），用 jieba 切词、标词性，
        再按 level 取短语或实体；含特殊 token 的段丢掉。"""
        from lmcourse.masking import _never_ids, knowledge_spans
        from lmcourse.text import tag_words

        special = torch.isin(ids, _never_ids(self.tokenizer))
        text = "".join("□" if s or len(self.tokenizer.itos[i]) != 1 else self.tokenizer.itos[i]
                       for i, s in zip(ids.tolist(), special.tolist()))
        out = knowledge_spans(tag_words(text), level)
        return [(a, b) for a, b in out if not special[a:b].any() and "□" not in text[a:b]]

    def mask_row(self, row, example_id, seed):
        """第一段与 BERT 相同；后两段按整词 / 实体整段地遮。"""
        from lmcourse.masking import span_mask

        level = self.level(example_id)
        if level == "char":
            return super().mask_row(row, example_id, seed)
        return span_mask(row[None], [self.spans(row, level)], self.tokenizer, self.p,
                         example_generator(seed, example_id))
