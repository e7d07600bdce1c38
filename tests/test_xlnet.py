"""XLNet：内容流、查询流、段编码、mems 与 Hugging Face 的 XLNetModel 逐位相等（float64），排列掩码、参数个数、参数检查。"""
import pytest
import torch
import transformers

from lmcourse.models.xlnet import (XLNetClassifier, XLNetConfig, XLNetLMHeadModel, XLNetModel, count_parameters,
                                   permutation_masks)

TINY = dict(vocab_size=40, d_model=32, n_layer=2, n_head=4, d_inner=64)


def _ref(dtype=torch.float64, seed=0, **kw):
    """小的随机 HF XLNetModel（dropout 为 0）和拷过权重的 XLNetModel。"""
    torch.manual_seed(seed)
    kw = dict(dict(dropout=0.0, ff_activation="gelu", attn_type="bi", bi_data=False, clamp_len=-1, mem_len=None,
                   reuse_len=None, pad_token_id=None, bos_token_id=None, eos_token_id=None), **kw)
    config = transformers.XLNetConfig(**TINY, **kw)
    ref = transformers.XLNetModel(config).to(dtype).eval()
    if dtype == torch.float64:
        # HF 在 float32 里算相对位置编码；单流时它自己转成权重的 dtype，双流时忘了转（float64 下报 dtype 不符），
        # 这里替它转一下：数值不变，只是类型对上。
        pe = ref.relative_positional_encoding
        ref.relative_positional_encoding = lambda *a, **k: pe(*a, **k).to(dtype)
    return ref, XLNetModel.from_hf(ref)



def _ids(B=2, T=7, seed=1):
    return torch.randint(0, TINY["vocab_size"], (B, T), generator=torch.Generator().manual_seed(seed))


def _max_diff(a, b):
    return (a - b).abs().max().item()


def test_content_stream_matches_hugging_face():
    ref, model = _ref()
    ids = _ids()
    assert model.word_embedding.weight.dtype == torch.float64 and not model.training
    out, mems = model(ids)
    assert out.shape == (2, 7, 32) and mems is None
    assert _max_diff(out, ref(ids, use_mems=False).last_hidden_state) < 1e-9
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0                                              # 第二句右侧补齐两个
    assert _max_diff(model(ids, attention_mask=mask)[0],
                     ref(ids, attention_mask=mask.double(), use_mems=False).last_hidden_state) < 1e-9
    ref, model = _ref(torch.float32)
    assert _max_diff(model(ids)[0], ref(ids, use_mems=False).last_hidden_state) < 1e-4


def test_permutation_masks_on_four_tokens():
    perm_mask, target_mapping = permutation_masks(4, torch.tensor([2, 0, 3, 1]))
    # 顺序 2 → 0 → 3 → 1，即 rank = [1, 3, 0, 2]；1 = 看不见
    expected = torch.tensor([[1, 1, 0, 1],                       # 位置 0 排第 1：只看见位置 2
                             [0, 1, 0, 0],                       # 位置 1 排最后：看见 0、2、3（不含自己）
                             [1, 1, 1, 1],                       # 位置 2 排最前：谁都看不见
                             [0, 1, 0, 1]], dtype=torch.float)   # 位置 3 排第 2：看见 2、0
    assert torch.equal(perm_mask, expected)
    assert torch.equal(target_mapping, torch.eye(4)[[2, 0, 3, 1]])
    assert torch.equal(perm_mask.diagonal(), torch.ones(4))     # 查询流看不见自己
    with pytest.raises(ValueError, match="order"):
        permutation_masks(4, torch.tensor([0, 1, 1, 3]))
    with pytest.raises(ValueError, match="order"):
        permutation_masks(3, torch.tensor([0, 1, 2, 3]))


def test_query_stream_matches_hugging_face():
    ref, model = _ref()
    ids = _ids()
    order = torch.randperm(7, generator=torch.Generator().manual_seed(3))
    perm_mask, tm = permutation_masks(7, order)
    perm_mask = perm_mask.double()[None].expand(2, 7, 7)
    for target_mapping in (tm[None, -2:], torch.eye(7)[None, -2:]):   # 顺序里的最后 2 个；句子的最后 2 个位置
        target_mapping = target_mapping.double().expand(2, 2, 7)
        out, _ = model(ids, perm_mask=perm_mask, target_mapping=target_mapping)
        theirs = ref(ids, perm_mask=perm_mask, target_mapping=target_mapping, use_mems=False).last_hidden_state
        assert out.shape == theirs.shape == (2, 2, 32) and _max_diff(out, theirs) < 1e-9
    last = order[-1]                                              # 顺序里最后一个：谁都看不见它的内容，
    other = ids.clone()                                           # 换掉它上面的 token，它的查询流输出不变
    other[:, last] = (other[:, last] + 1) % TINY["vocab_size"]
    tm_last = tm[None, -1:].double().expand(2, 1, 7)
    assert _max_diff(model(other, perm_mask=perm_mask, target_mapping=tm_last)[0],
                     model(ids, perm_mask=perm_mask, target_mapping=tm_last)[0]) < 1e-12
    content, _ = model(ids, perm_mask=perm_mask)                  # 只给 perm_mask：内容流
    assert _max_diff(content, ref(ids, perm_mask=perm_mask, use_mems=False).last_hidden_state) < 1e-9


def test_token_type_ids_match_hugging_face():
    ref, model = _ref()
    ids = _ids()
    segs = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1]])
    out, _ = model(ids, token_type_ids=segs)
    assert _max_diff(out, ref(ids, token_type_ids=segs, use_mems=False).last_hidden_state) < 1e-9
    assert _max_diff(out, model(ids)[0]) > 1e-6                   # 段编码确实起了作用（初始化很小，差别也小）
    perm_mask, tm = permutation_masks(7, torch.tensor([3, 1, 6, 0, 5, 2, 4]))
    perm_mask, tm = perm_mask.double()[None].expand(2, 7, 7), tm.double()[None, -3:].expand(2, 3, 7)
    out, _ = model(ids, token_type_ids=segs, perm_mask=perm_mask, target_mapping=tm)
    theirs = ref(ids, token_type_ids=segs, perm_mask=perm_mask, target_mapping=tm, use_mems=False)
    assert _max_diff(out, theirs.last_hidden_state) < 1e-9


def test_mems_match_hugging_face():
    ref, model = _ref(mem_len=4)
    assert model.config.mem_len == 4
    ids = _ids(T=10)
    a, b = ids[:, :6], ids[:, 6:]
    segs = torch.tensor([[0] * 4, [0, 0, 1, 1]])
    out1, mems = model(a)
    r1 = ref(a, use_mems=True)
    assert _max_diff(out1, r1.last_hidden_state) < 1e-9
    assert len(mems) == len(r1.mems) == 2
    for m, t in zip(mems, r1.mems):                              # HF 的 mems 是 (M, B, C)
        assert m.shape == (2, 4, 32) and not m.requires_grad and _max_diff(m, t.transpose(0, 1)) < 1e-9
    hf_mems = list(r1.mems)
    out2, mems2 = model(b, mems=mems, token_type_ids=segs)
    r2 = ref(b, mems=hf_mems, token_type_ids=segs, use_mems=True)
    assert _max_diff(out2, r2.last_hidden_state) < 1e-9
    assert _max_diff(out2, model(b, token_type_ids=segs)[0]) > 1e-3   # mems 确实被看见了
    for m, t in zip(mems2, r2.mems):
        assert m.shape == (2, 4, 32) and _max_diff(m, t.transpose(0, 1)) < 1e-9
    perm_mask, tm = permutation_masks(4, torch.tensor([1, 3, 0, 2]))  # 带 mems 的查询流
    perm_mask, tm = perm_mask.double()[None].expand(2, 4, 4), tm.double()[None, -2:].expand(2, 2, 4)
    out3, _ = model(b, mems=mems, perm_mask=perm_mask, target_mapping=tm)
    r3 = ref(b, mems=hf_mems, perm_mask=perm_mask, target_mapping=tm, use_mems=True)
    assert _max_diff(out3, r3.last_hidden_state) < 1e-9


def test_clamp_len_and_reuse_len_match_hugging_face():
    ref, model = _ref(mem_len=3, reuse_len=2, clamp_len=2)
    ids = _ids(T=5)
    out, mems = model(ids)
    r = ref(ids, use_mems=True)
    assert _max_diff(out, r.last_hidden_state) < 1e-9
    assert mems[0].shape == (2, 2, 32) and _max_diff(mems[1], r.mems[1].transpose(0, 1)) < 1e-9


def test_count_parameters_and_presets():
    torch.manual_seed(0)
    config = XLNetConfig(**TINY, d_head=8)
    model = XLNetModel(config)
    n = sum(p.numel() for p in model.parameters())
    assert count_parameters(config) == n
    ref, _ = _ref(torch.float32)
    assert n == sum(p.numel() for p in ref.parameters())
    for kw in (dict(untie_r=False), dict(d_head=5, ff_activation="relu")):   # 共用偏置；nh·d ≠ C
        c = XLNetConfig(**TINY, **dict(dict(d_head=8), **kw))
        m = XLNetModel(c)
        assert count_parameters(c) == sum(p.numel() for p in m.parameters())
        assert m(_ids())[0].shape == (2, 7, 32)
    base = XLNetConfig.base()
    assert (base.vocab_size, base.d_model, base.n_layer, base.n_head, base.d_head, base.d_inner) == \
        (32000, 768, 12, 12, 64, 3072)
    assert XLNetConfig.base(vocab_size=100).vocab_size == 100 and XLNetConfig() == base
    assert count_parameters(base) == 116_718_336                  # XLNet-base（xlnet-base-cased 的主体）
    hf_base = transformers.XLNetConfig(d_model=768, n_layer=12, n_head=12, d_inner=3072)
    assert sum(p.numel() for p in transformers.XLNetModel(hf_base).parameters()) == 116_718_336


def test_bad_inputs_raise_with_argument_name():
    _, model = _ref()
    ids = _ids()
    with pytest.raises(TypeError, match="input_ids"):
        model(ids.double())
    with pytest.raises(ValueError, match="input_ids"):
        model(ids[0])
    with pytest.raises(ValueError, match="perm_mask"):
        model(ids, perm_mask=torch.zeros(2, 7, 6))
    with pytest.raises(ValueError, match="target_mapping"):
        model(ids, target_mapping=torch.zeros(2, 2, 6))
    with pytest.raises(ValueError, match="token_type_ids"):
        model(ids, token_type_ids=torch.zeros(2, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="mems"):
        model(ids, mems=[torch.zeros(2, 3, 32)])
    with pytest.raises(TypeError, match="ref"):
        XLNetModel.from_hf(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="n_head"):
        XLNetConfig(**dict(TINY, n_head=0))
    with pytest.raises(ValueError, match="ff_activation"):
        XLNetConfig(ff_activation="swish")
    with pytest.raises(ValueError, match="mem_len"):
        XLNetConfig(mem_len=0)
    with pytest.raises(TypeError, match="config"):
        XLNetModel(TINY)


def test_partial_prediction_masks():
    order = torch.tensor([4, 1, 0, 3, 2])                        # 上文 4、1、0；预测 3，再预测 2
    perm_mask, tm = permutation_masks(5, order, num_predict=2)
    assert torch.equal(tm, torch.eye(5)[[3, 2]])
    seen = 1 - perm_mask                                          # 1 = 看得见（查询流）
    assert torch.equal(seen[:, [0, 1, 4]], torch.ones(5, 3))     # 上文谁都看得见（包括上文自己）
    assert seen[3, 2] == 0 and seen[2, 3] == 1                   # 3 先预测：看不见 2；2 看得见 3
    assert seen[3, 3] == 0 and seen[2, 2] == 0                   # 预测对象看不见自己
    assert seen[[0, 1, 4]][:, [2, 3]].sum() == 0                 # 上文看不见预测对象
    full, _ = permutation_masks(5, order, num_predict=5)
    assert torch.equal(full, permutation_masks(5, order)[0])
    for bad in (0, 6):
        with pytest.raises(ValueError, match="num_predict"):
            permutation_masks(5, order, num_predict=bad)


def test_lm_head_matches_hugging_face_and_ties_weights():
    torch.manual_seed(0)
    kw = dict(dropout=0.0, ff_activation="gelu", attn_type="bi", bi_data=False, mem_len=None, reuse_len=None,
              pad_token_id=None, bos_token_id=None, eos_token_id=None)
    ref = transformers.XLNetLMHeadModel(transformers.XLNetConfig(**TINY, **kw)).double().eval()
    pe = ref.transformer.relative_positional_encoding          # 见 _ref：HF 双流时忘了转 dtype
    ref.transformer.relative_positional_encoding = lambda *a, **k: pe(*a, **k).double()
    model = XLNetLMHeadModel.from_hf(ref)
    assert model.lm_loss.weight is model.transformer.word_embedding.weight
    ids = _ids()
    order = torch.randperm(7, generator=torch.Generator().manual_seed(5))
    pm, tm = permutation_masks(7, order, num_predict=3)
    pm, tm = pm.double()[None].expand(2, 7, 7), tm.double()[None].expand(2, 3, 7)
    logits, _ = model(ids, perm_mask=pm, target_mapping=tm)
    assert logits.shape == (2, 3, TINY["vocab_size"])
    assert _max_diff(logits, ref(ids, perm_mask=pm, target_mapping=tm, use_mems=False).logits) < 1e-9
    assert _max_diff(model(ids)[0], ref(ids, use_mems=False).logits) < 1e-9
    with pytest.raises(TypeError, match="ref"):
        XLNetLMHeadModel.from_hf(ref.transformer)


def test_classifier_pools_real_tokens_only():
    torch.manual_seed(0)
    body = XLNetModel(XLNetConfig(**TINY, dropout=0.0)).double()
    clf = XLNetClassifier(body, 2, dropout=0.0).double().eval()
    ids = _ids()
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 4:] = 0
    out = clf(ids, None, mask)
    assert out.shape == (2, 2)
    assert _max_diff(out[1], clf(ids[1:, :4])[0]) < 1e-9        # 补齐的位置不影响结果
    with pytest.raises(TypeError, match="model"):
        XLNetClassifier(torch.nn.Linear(2, 2))


def test_memory_from_another_hidden_size_is_rejected():
    _, model = _ref()
    with pytest.raises(ValueError, match="mems"):
        model(_ids(), mems=[torch.zeros(2, 3, 16)] * 2)         # C = 32 的模型，mems 却是 16 维
