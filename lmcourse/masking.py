"""预训练的掩码策略：BERT 的 80/10/10 掩码语言模型（MLM）、中文里英文单词的全词掩码，以及 XLNet 的排列掩码。"""
import torch
import torch.nn.functional as F

from lmcourse._check import check_choice, check_int, check_number, check_type
from lmcourse.text import CharTokenizer, english_spans

IGNORE_INDEX = -100  # labels 里不需要预测的位置（F.cross_entropy 的默认 ignore_index）


def _check_ids(input_ids, tokenizer, p=None, ndim=None):
    """公共入口的参数检查：id 张量（都在字表内；给了 ndim 时核对维数）、字表、比例 p。"""
    check_type("input_ids", input_ids, torch.Tensor, "torch.LongTensor")
    check_type("tokenizer", tokenizer, CharTokenizer, "CharTokenizer")
    if input_ids.dtype != torch.long:
        raise TypeError(f"参数 input_ids 应为整数（torch.long）张量，收到 {input_ids.dtype}")
    if ndim is not None and input_ids.dim() != ndim:
        raise ValueError(f"参数 input_ids 应为 {ndim} 维张量，收到形状 {tuple(input_ids.shape)}")
    if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= len(tokenizer)):
        raise ValueError(f"参数 input_ids 含有字表之外的 id（字表大小 {len(tokenizer)}）")
    if p is not None:
        check_number("p", p, minimum=0, maximum=1)


def _never_ids(tokenizer):
    """从不被选中的特殊 token：[PAD] [UNK] [CLS] [SEP] [MASK]。#NUM# 可以被选中：模型要学会预测"这里是个数"。"""
    return torch.tensor([tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id])


def _replace(input_ids, chosen, u, tokenizer, generator):
    """对选中的位置：u < 0.8 的换成 [MASK]，0.8 ≤ u < 0.9 的换成随机的普通字，其余（10%）保持不变。

    u 是 [0, 1) 上的均匀随机数，形状同 input_ids。mask_tokens 每个 token 一个 u，span_mask 同一单位共用一个。
    """
    inputs, labels = input_ids.clone(), input_ids.clone()
    labels[~chosen] = IGNORE_INDEX
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
    _check_ids(input_ids, tokenizer, p)
    chosen = (torch.rand(input_ids.shape, generator=generator) < p) & ~torch.isin(input_ids, _never_ids(tokenizer))
    return _replace(input_ids, chosen, torch.rand(input_ids.shape, generator=generator), tokenizer, generator)


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
    return _replace(ids, chosen, torch.rand(ids.shape, generator=generator), tokenizer, generator)


# ---------- XLNet：分解顺序与两个流的掩码 ----------
def permutation_masks(T, order, num_predict=None):
    """由分解顺序 order（range(T) 的一个排列，LongTensor）给出 (perm_mask (T, T), target_mapping (P, T))。

    rank[j] 是位置 j 在顺序里排第几。perm_mask[i, j] = 1 当且仅当 rank[j] ≥ rank[i]：
    位置 i 看不见 j 的内容（j 在顺序里排在 i 之后，或者 j 就是 i）。这正是 HF 的约定（1 = i 不注意 j），
    也就是查询流（query stream）用的掩码；内容流（content stream）在模型里另外总能看见自己，即去掉对角线。
    target_mapping[k, j] = 1 当且仅当 j = order[T - P + k]：预测对象是顺序里的最后 P 个位置。
    num_predict=P（部分预测，partial prediction）：只预测顺序里的最后 P 个，前 T - P 个只当上文，
    不被预测，所以它们之间的先后无关紧要，彼此全都看得见（原版代码的做法）：perm_mask[i, j] 只在 j 是预测对象时才可能为 1。
    不给 num_predict 时 P = T，全部预测。要喂给模型，在前面加一维 batch：perm_mask[None]、target_mapping[None]。
    """
    check_int("T", T, minimum=1)
    check_type("order", order, torch.Tensor, "torch.LongTensor")
    if order.dtype not in (torch.long, torch.int) or order.shape != (T,):
        raise ValueError(f"参数 order 应为长 {T} 的整数张量，收到 dtype {order.dtype}、形状 {tuple(order.shape)}")
    if not torch.equal(order.sort().values, torch.arange(T, device=order.device)):
        raise ValueError(f"参数 order 应为 range({T}) 的一个排列，收到 {order.tolist()}")
    P = T if num_predict is None else check_int("num_predict", num_predict, minimum=1, maximum=T)
    order = order.long()
    rank = torch.empty_like(order)
    rank[order] = torch.arange(T, device=order.device)                         # (T,)
    target = rank >= T - P                                                     # (T,) 是否被预测
    perm_mask = ((rank[None, :] >= rank[:, None]) & target[None, :]).float()   # (T, T)
    target_mapping = F.one_hot(order[T - P:], T).float()                       # (P, T)
    return perm_mask, target_mapping


def sample_permutation(ids, tokenizer, p=1 / 6, generator=None):
    """给一行 token（(T,) 的 LongTensor）随机选预测对象并排出分解顺序，返回 (perm_mask (T, T), target_mapping (P, T), labels (P,))。

    从普通 token 里（特殊 token 从不选）随机选 P = round(p · 普通 token 数) 个作预测对象，按随机的先后排在顺序的最后，
    其余的只作上文（见 permutation_masks 的 num_predict）。输入本身不做任何替换。
    """
    _check_ids(ids, tokenizer)
    if ids.dim() != 1:
        raise ValueError(f"参数 ids 应为一维 (T,) 的张量，收到形状 {tuple(ids.shape)}")
    check_number("p", p, minimum=0, maximum=1, strict=True)
    cand = (~torch.isin(ids, _never_ids(tokenizer))).nonzero().squeeze(1)     # 可以预测的位置
    if len(cand) == 0:
        raise ValueError("参数 ids 里没有可以预测的普通 token")
    P = max(1, round(p * len(cand)))
    targets = cand[torch.randperm(len(cand), generator=generator)[:P]]       # 预测对象，按预测的先后
    context = torch.ones(len(ids), dtype=torch.bool)
    context[targets] = False
    order = torch.cat([context.nonzero().squeeze(1), targets])               # 上文在前，预测对象在后
    perm_mask, target_mapping = permutation_masks(len(ids), order, P)
    return perm_mask, target_mapping, ids[targets]


# ---------- ERNIE：按短语、实体整段地遮 ----------
def _check_spans(spans, input_ids, tokenizer, p):
    """span_mask 的参数检查：input_ids (B, T)，spans 每行一组互不重叠、不含特殊 token 的 (start, end)。"""
    _check_ids(input_ids, tokenizer, p, ndim=2)
    B, T = input_ids.shape
    special = torch.isin(input_ids, _never_ids(tokenizer))
    check_type("spans", spans, (list, tuple), "每行一个 (start, end) 列表")
    if len(spans) != B:
        raise ValueError(f"参数 spans 应有 {B} 行（与 batch 一致），收到 {len(spans)} 行")
    for b, row in enumerate(spans):
        check_type(f"spans[{b}]", row, (list, tuple), "(start, end) 列表")
        last = 0
        for s, e in sorted((int(s), int(e)) for s, e in row):
            if e <= s:
                raise ValueError(f"参数 spans[{b}] 里的 ({s}, {e}) 应满足 end > start")
            if s < 0 or e > T:
                raise ValueError(f"参数 spans[{b}] 里的 ({s}, {e}) 超出了 0..{T}")
            if s < last:
                raise ValueError(f"参数 spans[{b}] 里的 ({s}, {e}) 与前一段重叠")
            if special[b, s:e].any():
                raise ValueError(f"参数 spans[{b}] 里的 ({s}, {e}) 含有特殊 token")
            last = e


def span_mask(input_ids, spans, tokenizer, p=0.15, generator=None):
    """按“单位”遮：spans 每行一个 (start, end) 列表（end 不含），每一段是一个单位，其余普通 token 各自是一个单位。

    每个单位以概率 p 被选中（所以约有比例 p 的普通 token 被预测），选中的单位整体 80% 换成 [MASK]、
    10% 换成随机普通字、10% 不变；特殊 token 从不选中，也不能落在某一段里。
    input_ids: (B, T) 的 LongTensor。返回 (inputs, labels)，与 mask_tokens 相同。
    """
    _check_spans(spans, input_ids, tokenizer, p)
    B, T = input_ids.shape
    special = torch.isin(input_ids, _never_ids(tokenizer))                # (B, T)
    unit = torch.arange(T).repeat(B, 1)                                   # (B, T) 每个位置所属单位的编号
    for b, row in enumerate(spans):
        for s, e in row:
            unit[b, s:e] = s
    u_pick = torch.rand(B, T, generator=generator)                         # 每个单位一个数，取单位开头那一格
    u_kind = torch.rand(B, T, generator=generator)
    chosen = (u_pick.gather(1, unit) < p) & ~special
    return _replace(input_ids, chosen, u_kind.gather(1, unit), tokenizer, generator)   # 同一单位同一个去向


def knowledge_spans(words, level):
    """由分好词、带词性的句子 [(词, 词性)] 给出 ERNIE 的遮盖单位 [(start, end)]（字的位置）。

    level="phrase"：每个多字词是一段（短语级）；level="entity"：每个人名、地名、机构名是一段（实体级），
    连续的 nr 合成一个人名（人民日报把姓和名分开标；挨在一起的几个人名也会并成一段）。人民日报自带的词性与 jieba.posseg 的输出都可以用。
    """
    from lmcourse.data import entity_spans

    check_type("words", words, (list, tuple), "(词, 词性) 列表")
    check_choice("level", level, ("phrase", "entity"))
    if level == "entity":
        return [(s, e) for s, e, _ in entity_spans(words)]
    spans, pos = [], 0
    for w, _ in words:
        if len(w) > 1:
            spans.append((pos, pos + len(w)))
        pos += len(w)
    return spans
