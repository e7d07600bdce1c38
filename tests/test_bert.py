"""BERT：与 Hugging Face 的 BertModel 逐位相等、参数量、预训练数据、分类池化。"""
import pytest
import torch

from lmcourse.masking import IGNORE_INDEX
from lmcourse import objectives, pretrain
from lmcourse.models.bert import (BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel,
                                  collate, count_parameters, encode_pair)
from lmcourse.text import CharTokenizer

transformers = pytest.importorskip("transformers")


def _hf(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.BertConfig(vocab_size=120, hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                                  intermediate_size=96, max_position_embeddings=40, attn_implementation="eager")
    return transformers.BertModel(cfg).to(dtype).eval()


def _inputs():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 120, (3, 12), generator=g)
    types = torch.randint(0, 2, (3, 12), generator=g)
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    return ids, types, mask


def test_bert_matches_hugging_face_float64():
    ref = _hf()
    ours = BertModel.from_hf(ref).eval()
    ids, types, mask = _inputs()
    out = ref(input_ids=ids, token_type_ids=types, attention_mask=mask)
    seq, pooled = ours(ids, types, mask)
    keep = mask.bool()
    assert (out.last_hidden_state - seq)[keep].abs().max() < 1e-9
    assert (out.pooler_output - pooled).abs().max() < 1e-9


def test_bert_matches_hugging_face_float32_and_gradients():
    ref = _hf(torch.float32, seed=3)
    ours = BertModel.from_hf(ref).eval()
    ids, types, mask = _inputs()
    a = ref(input_ids=ids, token_type_ids=types, attention_mask=mask).pooler_output
    b = ours(ids, types, mask)[1]
    assert (a - b).abs().max() < 1e-4
    a.sum().backward()
    b.sum().backward()
    g_ref = ref.encoder.layer[0].intermediate.dense.weight.grad
    g_ours = ours.layers[0].linear1.weight.grad
    assert (g_ref - g_ours).abs().max() < 1e-4


def test_from_hf_rejects_other_models():
    with pytest.raises(TypeError, match="ref"):
        BertModel.from_hf(torch.nn.Linear(2, 2))


def test_parameter_counts_match_the_paper_and_the_modules():
    assert round(count_parameters(BertConfig.base()) / 1e6) == 109      # 论文写 110M
    assert round(count_parameters(BertConfig.large()) / 1e6) == 335     # 论文写 340M
    for cfg in (BertConfig.base(), BertConfig.large(), BertConfig.small(500)):
        with torch.device("meta"):
            model = BertModel(cfg)
        assert sum(p.numel() for p in model.parameters()) == count_parameters(cfg)


def test_config_checks():
    with pytest.raises(ValueError, match="num_attention_heads"):
        BertConfig(hidden_size=100, num_attention_heads=3)
    with pytest.raises(TypeError, match="config"):
        BertModel({"hidden_size": 8})
    model = BertModel(BertConfig.small(50, max_position_embeddings=8))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="input_ids"):
        model(torch.zeros(9, dtype=torch.long))


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_texts(["今天天气很好。", "我们去公园散步。", "明天可能下雨。", "他买了三本书。"])


def test_encode_pair_layout_and_truncation(tok):
    ids, types = encode_pair(tok, "今天", "下雨")
    assert tok.decode(ids) == "[CLS]今天[SEP]下雨[SEP]"
    assert types == [0, 0, 0, 0, 1, 1, 1]
    ids, types = encode_pair(tok, "今天天气很好", "雨", max_len=7)
    assert len(ids) == 7 and tok.decode(ids) == "[CLS]今天天[SEP]雨[SEP]"   # 先截较长的一句
    with pytest.raises(ValueError, match="max_len"):
        encode_pair(tok, "今天", "下雨", max_len=4)


def test_nsp_batch_is_cls_a_sep_b_with_half_real_next_text():
    """MLM + NSP 的训练数据（预训练命令用的同一个目标）：[CLS] A [SEP] B，B 一半是接着 A 的原文，一半换成别处的文本。"""
    from lmcourse import data

    tok = data.bert_tokenizer()
    nsp = objectives.get("mlm_nsp", tokenizer=tok, p=1e-9)             # 几乎不遮：直接比较原文
    get = pretrain.Batches(nsp, "news", tok, normalize=True, batch_size=64, seq_len=32, seed=0)
    b = get(2)
    plain = objectives.get("mlm", tokenizer=tok, p=1e-9)
    raw = pretrain.Batches(plain, "news", tok, normalize=True, batch_size=64, seq_len=32, seed=0)(2)["input_ids"]
    k = 16                                                              # (32 - 1 + 1) // 2：[SEP] 的位置
    assert (b["input_ids"][:, 0] == tok.cls_id).all() and (b["input_ids"][:, k] == tok.sep_id).all()
    assert (b["token_type_ids"][:, :k + 1] == 0).all() and (b["token_type_ids"][:, k + 1:] == 1).all()
    real = b["nsp_labels"].bool()
    assert 0.3 < real.float().mean() < 0.7
    assert torch.equal(b["input_ids"][real, k + 1:], raw[real, k + 1:])          # 是下一句：B 就是原文接下去的部分
    assert (b["input_ids"][~real, k + 1:] != raw[~real, k + 1:]).any(1).all()    # 不是：换成了别的文本
    assert torch.equal(b["input_ids"][:, 1:k], raw[:, 1:k])                      # A 不动


def test_pretraining_loss_and_positions(tok):
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.small(len(tok), hidden_size=32, num_attention_heads=2, intermediate_size=64)).eval()
    obj = objectives.get("mlm_nsp", tokenizer=tok, p=0.5)
    chunks = torch.randint(len(tok.special_ids), len(tok), (4, 15), generator=torch.Generator().manual_seed(0))
    batch = obj.make_batch(chunks, [0, 1, 2, 3], 0, others=chunks.flip(0))
    full, nsp = model(batch["input_ids"], batch["token_type_ids"])
    picked = batch["mlm_labels"] != IGNORE_INDEX
    part, _ = model(batch["input_ids"], batch["token_type_ids"], None, picked)
    assert torch.allclose(full[picked], part, atol=1e-6)
    stats = {}
    total, n = obj(model, batch, stats)                                  # 训练用的损失：MLM 之和 + 权重 × NSP 之和
    mlm = torch.nn.functional.cross_entropy(full[picked], batch["mlm_labels"][picked], reduction="sum")
    nsp_sum = torch.nn.functional.cross_entropy(nsp, batch["nsp_labels"], reduction="sum")
    assert torch.isclose(total, mlm + obj.p * batch["input_ids"].size(1) * nsp_sum, rtol=1e-5)
    assert n == int(picked.sum()) and stats["nsp_n"] == 4 and stats["mlm_loss"] == pytest.approx(mlm.item(), rel=1e-5)
    # MLM 的输出层与输入字向量共享同一个矩阵：输入里没出现的字，梯度只能来自输出层的 softmax
    absent = torch.ones(len(tok), dtype=torch.bool)
    absent[batch["input_ids"].unique()] = False
    assert absent.sum() > 0
    total.backward()
    grad = model.bert.embeddings.word_embeddings.weight.grad
    assert grad[absent].abs().sum(-1).gt(0).all()


@pytest.mark.parametrize("pooling, width", [("cls", 32), ("mean", 32), ("max", 32), ("mean_max", 64)])
def test_classifier_pooling_ignores_padding(tok, pooling, width):
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig.small(len(tok), hidden_size=32, num_attention_heads=2,
                                                           intermediate_size=64), 2, pooling=pooling).eval()
    assert model.classifier.in_features == width
    short = collate([encode_pair(tok, "今天天气")], tok.pad_id)
    padded = collate([encode_pair(tok, "今天天气"), encode_pair(tok, "我们去公园散步了很久")], tok.pad_id)
    a = model(**short)
    b = model(**padded)[:1]
    assert torch.allclose(a, b, atol=1e-5)


def test_classifier_checks(tok):
    cfg = BertConfig.small(len(tok))
    with pytest.raises(ValueError, match="pooling"):
        BertForSequenceClassification(cfg, 2, pooling="attention")
    with pytest.raises(ValueError, match="num_layers"):
        BertForSequenceClassification(cfg, 2, num_layers=9)


def test_masked_metrics_by_input():
    # 按输入分开统计的那一遍，合起来要与默认的整体指标一致；三种位置约 80/10/10
    from lmcourse import data
    from lmcourse.pretrain import masked_metrics

    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(vocab_size=len(data.bert_tokenizer()), hidden_size=16, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=32, max_position_embeddings=128))
    whole = masked_metrics(model, "valid")
    split = masked_metrics(model, "valid", by_input=True)
    assert split["mlm_ppl"] == pytest.approx(whole["mlm_ppl"], rel=1e-5) and split["mlm_acc"] == whole["mlm_acc"]
    parts = split["by_input"]
    assert sum(p["share"] for p in parts.values()) == pytest.approx(1)
    assert 0.75 < parts["mask"]["share"] < 0.85 and 0.07 < parts["same"]["share"] < 0.13
