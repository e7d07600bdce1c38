"""预训练的掩码策略：BERT 的 80/10/10 掩码语言模型（MLM），以及中文里英文单词的全词掩码。"""
import torch

from lmcourse._check import check_number, check_type
from lmcourse.text import CharTokenizer, english_spans

IGNORE_INDEX = -100  # labels 里不需要预测的位置（F.cross_entropy 的默认 ignore_index）


def _check_ids(input_ids, tokenizer):
    check_type("input_ids", input_ids, torch.Tensor, "torch.LongTensor")
    check_type("tokenizer", tokenizer, CharTokenizer, "CharTokenizer")
    if input_ids.dtype != torch.long:
        raise TypeError(f"参数 input_ids 应为整数（torch.long）张量，收到 {input_ids.dtype}")
    if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= len(tokenizer)):
        raise ValueError(f"参数 input_ids 含有字表之外的 id（字表大小 {len(tokenizer)}）")


def _never_ids(tokenizer):
    """从不被选中的特殊 token：[PAD] [UNK] [CLS] [SEP] [MASK]。#NUM# 可以被选中：模型要学会预测"这里是个数"。"""
    return torch.tensor([tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id])


def _replace(input_ids, chosen, tokenizer, generator):
    """对选中的位置：80% 换成 [MASK]，10% 换成随机的普通字，10% 保持不变。"""
    inputs, labels = input_ids.clone(), input_ids.clone()
    labels[~chosen] = IGNORE_INDEX
    u = torch.rand(input_ids.shape, generator=generator)
    to_mask = chosen & (u < 0.8)
    to_random = chosen & (u >= 0.8) & (u < 0.9)
    inputs[to_mask] = tokenizer.mask_id
    first = len(tokenizer.special_ids)  # 普通字的 id 从这里开始
    random_ids = torch.randint(first, len(tokenizer), input_ids.shape, generator=generator)
    inputs[to_random] = random_ids[to_random]
    return inputs, labels


def mask_tokens(input_ids, tokenizer, p=0.15, generator=None):
    """BERT 的掩码语言模型：每个 token 以概率 p 被选中（[PAD] [UNK] [CLS] [SEP] [MASK] 从不选）。

    选中的 token 中 80% 换成 [MASK]、10% 换成随机普通字、10% 不变；labels 在选中处为原 id，其余为 -100。
    input_ids: (B, T) 或 (T,) 的 LongTensor。返回 (inputs, labels)，形状同 input_ids。
    """
    _check_ids(input_ids, tokenizer)
    check_number("p", p, minimum=0, maximum=1)
    chosen = (torch.rand(input_ids.shape, generator=generator) < p) & ~torch.isin(input_ids, _never_ids(tokenizer))
    return _replace(input_ids, chosen, tokenizer, generator)


def whole_word_mask(text, tokenizer, p=0.15, generator=None):
    """全词掩码：先按"单位"选，再把单位里的每个字一起遮住。

    单位是一个英文单词（english_spans 找出的整段）或一个其他字符；#NUM# 本身就是一个 token。
    返回 (inputs, labels)，都是一维 LongTensor（不含 [CLS] / [SEP]）。
    """
    check_type("text", text, str, "字符串")
    check_number("p", p, minimum=0, maximum=1)
    tokens = tokenizer.tokenize(text)
    ids = torch.tensor([tokenizer.stoi.get(t, tokenizer.unk_id) for t in tokens], dtype=torch.long)
    # 字符位置 -> token 位置（#NUM# 占 5 个字符、1 个 token）
    starts, pos = [], 0
    for t in tokens:
        starts.append(pos)
        pos += len(t)
    unit = list(range(len(tokens)))  # 每个 token 所属单位的编号
    for s, e in english_spans(text):
        members = [i for i, st in enumerate(starts) if s <= st < e]
        for i in members:
            unit[i] = members[0]
    units = sorted(set(unit))
    picked = torch.rand(len(units), generator=generator) < p
    chosen_units = {u for u, c in zip(units, picked.tolist()) if c}
    chosen = torch.tensor([u in chosen_units for u in unit], dtype=torch.bool)
    chosen &= ~torch.isin(ids, _never_ids(tokenizer))
    return _replace(ids, chosen, tokenizer, generator)
