"""情感微调的工具：预处理、按长度分桶、数据增强、分类器的构建。"""
import pytest
import torch

from lmcourse.finetune import (FineTuneConfig, augment_text, build_classifier, fine_tune, length_batches, make_batch,
                               preprocess)
from lmcourse.models.bert import BertConfig, BertForPreTraining
from lmcourse.text import CharTokenizer


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_texts(["这个手机非常好用，推荐购买。", "质量太差了，不会再买"])


def test_preprocess_adds_special_tokens_numbers_and_truncates(tok):
    items = [{"text": "手机用了3年", "label": 1}, {"text": "好" * 300, "label": 0}]
    out = preprocess(items, tok, max_len=16)
    assert tok.decode(out[0]["ids"]) == "[CLS]手机用了#NUM#[UNK][SEP]"
    assert len(out[1]["ids"]) == 16 and out[1]["label"] == 0
    assert items[0].keys() == {"text", "label"}           # 不改原数据
    with pytest.raises(TypeError, match="items"):
        preprocess(["手机"], tok)


def test_length_batches_cover_everything_once_and_group_lengths():
    examples = [{"ids": [0] * n} for n in torch.randint(1, 200, (1000,)).tolist()]
    batches = length_batches(examples, 10, torch.Generator().manual_seed(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    spread = sum(max(len(examples[i]["ids"]) for i in b) - min(len(examples[i]["ids"]) for i in b) for b in batches)
    assert spread / len(batches) < 20                    # 同一批里的长度相近
    assert length_batches(examples, 10, shuffle=False) == length_batches(examples, 10, shuffle=False)


def test_augment_text_is_seeded_and_keeps_most_chars():
    text = "这个手机非常好用，推荐大家购买，物流也很快"
    a = augment_text(text, torch.Generator().manual_seed(0))
    b = augment_text(text, torch.Generator().manual_seed(0))
    assert a == b and a != text and len(a) >= len(text) * 0.6
    assert augment_text("好", torch.Generator().manual_seed(0)) == "好"
    with pytest.raises(ValueError, match="p_delete"):
        augment_text(text, p_delete=2)


def test_build_classifier_loads_pretrained_encoder(tok):
    torch.manual_seed(0)
    pre = BertForPreTraining(BertConfig.small(len(tok), hidden_size=32, num_attention_heads=2, intermediate_size=64))
    from dataclasses import asdict
    states = {"config": asdict(pre.bert.config), "news": pre.state_dict()}
    model = build_classifier(FineTuneConfig(num_layers=2, pooling="mean_max"), states)
    assert len(model.bert.layers) == 2
    assert torch.equal(model.bert.layers[1].linear1.weight, pre.bert.layers[1].linear1.weight)
    scratch = build_classifier(FineTuneConfig(init="scratch"), states)
    assert not torch.equal(scratch.bert.embeddings.word_embeddings.weight, pre.bert.embeddings.word_embeddings.weight)
    batch = make_batch(preprocess([{"text": "好用", "label": 1}, {"text": "太差了", "label": 0}], tok), [0, 1], tok.pad_id)
    assert model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]).shape == (2, 2)


def test_ner_examples_and_span_f1(tok):
    from lmcourse.finetune import NER_TAGS, ner_examples, span_f1, tags_to_spans

    ex = ner_examples([("江泽民在北京", [(0, 3, "PER"), (4, 6, "LOC")])], tok)[0]
    assert len(ex["ids"]) == len(ex["tags"]) == 8
    tags = [NER_TAGS[t] for t in ex["tags"][1:-1]]
    assert tags == ["B-PER", "I-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    assert tags_to_spans(tags) == {(0, 3, "PER"), (4, 6, "LOC")}
    assert tags_to_spans(["I-ORG", "I-ORG", "O", "B-LOC", "I-PER"]) == {(0, 2, "ORG"), (3, 4, "LOC"), (4, 5, "PER")}
    p, r, f = span_f1([{(0, 3, "PER"), (4, 6, "LOC")}], [{(0, 3, "PER"), (4, 5, "LOC")}])
    assert (p, r, f) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("seed", range(5))
def test_span_f1_equals_seqeval(seed):
    # 随机的 BIO 序列（含孤立的 I-、类型不接的 I-）：实体级 P / R / F1 与 seqeval（conlleval 口径）相同
    import random

    from seqeval.metrics import f1_score, precision_score, recall_score

    from lmcourse.finetune import NER_TAGS, span_f1, tags_to_spans

    rng = random.Random(seed)
    gold = [[rng.choice(NER_TAGS) for _ in range(rng.randint(1, 30))] for _ in range(50)]
    pred = [[t if rng.random() < 0.7 else rng.choice(NER_TAGS) for t in row] for row in gold]
    p, r, f = span_f1([tags_to_spans(t) for t in gold], [tags_to_spans(t) for t in pred])
    assert p == pytest.approx(precision_score(gold, pred))
    assert r == pytest.approx(recall_score(gold, pred))
    assert f == pytest.approx(f1_score(gold, pred))


def test_gpt1_fine_tuning_with_auxiliary_lm_loss_learns_a_separable_toy_task(tok):
    """GPT-1 式微调走同一个 fine_tune：带辅助语言模型损失也能把两类分开（玩具数据上验证集 AUC = 1）。"""
    from lmcourse.finetune import build_gpt_classifier, fine_tune

    torch.manual_seed(0)
    items = [{"text": "非常好用推荐购买", "label": 1}, {"text": "质量太差不会再买", "label": 0}] * 32
    data = preprocess(items, tok)
    config = dict(vocab_size=len(tok), n_positions=32, n_embd=16, n_layer=1, n_head=2)
    ft = FineTuneConfig(dropout=0.0, epochs=3.0, lr=3e-3, batch_size=8, aux_lm=0.5)
    model = build_gpt_classifier(ft, None, config)
    history, scores = fine_tune(model, data, data, ft, tok, seed=0, progress=False)
    assert history.last["valid_auc"] == 1.0 and len(scores) == len(data)


def test_tfidf_baseline_scores_each_split_and_checks_its_input():
    from lmcourse.finetune import tfidf_baseline

    reviews = {"train": [{"text": "非常好用推荐", "label": 1}, {"text": "太差了不买", "label": 0}] * 10,
               "test": [{"text": "好用推荐", "label": 1}, {"text": "太差", "label": 0}]}
    out = tfidf_baseline(reviews, splits=("test",))
    assert out["test_auc"] == 1.0 and len(out["test"]) == 2
    with pytest.raises(ValueError, match="valid"):
        tfidf_baseline(reviews)
    with pytest.raises(TypeError, match="reviews"):
        tfidf_baseline([])


def test_token_classifier_matches_hugging_face_and_learns_a_toy_ner(tok):
    import transformers

    from lmcourse.finetune import NER_TAGS, ner_examples, ner_f1, predict_tags
    from lmcourse.models.bert import BertForTokenClassification, BertModel

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                     num_labels=len(NER_TAGS))
    hf = transformers.BertForTokenClassification(config).double().eval()
    hf_body = transformers.BertModel(config).double().eval()            # HF 的逐字分类没有池化层；主体从这里拷
    hf.bert.load_state_dict(hf_body.state_dict(), strict=False)
    body = BertModel.from_hf(hf_body)
    ours = BertForTokenClassification(body.config, len(NER_TAGS), dropout=0.0).double().eval()
    ours.bert.load_state_dict(body.state_dict())
    ours.classifier.load_state_dict(hf.classifier.state_dict())
    ids = torch.randint(6, len(tok), (2, 9), generator=torch.Generator().manual_seed(1))
    assert (ours(ids) - hf(ids).logits).abs().max() < 1e-9
    pairs = [("推荐购买手机", [(4, 6, "LOC")]), ("质量太差", []), ("手机好用", [(0, 2, "LOC")])] * 20
    examples = ner_examples(pairs, tok)
    model = BertForTokenClassification(BertConfig.small(len(tok), hidden_size=32, num_attention_heads=2,
                                                        intermediate_size=64), len(NER_TAGS))
    hist, _ = fine_tune(model, examples, examples, FineTuneConfig(epochs=8, batch_size=8, lr=3e-3), tok, seed=0,
                        progress=False)
    assert hist.last["valid_f1"] == ner_f1(model, examples)[2] > 0.9
    assert predict_tags(model, examples[:1]) == [["O", "O", "O", "O", "B-LOC", "I-LOC"]]


def test_soup_averages_float_parameters_and_rejects_different_models():
    from lmcourse.finetune import soup

    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(3)}
    out = soup([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and out["w"].dtype == torch.float32
    assert torch.equal(out["n"], torch.tensor(3))                  # 整数缓冲区原样保留
    assert torch.equal(soup([a])["w"], a["w"])                     # 一个模型的汤就是它自己
    m1, m2 = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    with torch.no_grad():
        mean_out = (m1(x) + m2(x)) / 2
        m1.load_state_dict(soup([m1.state_dict(), m2.state_dict()]))
        assert torch.allclose(m1(x), mean_out, atol=1e-6)           # 线性层：汤的输出 = 两个输出的平均
    with pytest.raises(ValueError, match="state_dicts"):
        soup([])
    with pytest.raises(ValueError, match="第 1 个"):
        soup([a, {"w": torch.zeros(3), "n": torch.tensor(3)}])
    with pytest.raises(TypeError, match="state_dicts"):
        soup(a)
