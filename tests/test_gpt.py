"""GPT：与 Hugging Face 的 GPT2LMHeadModel、OpenAIGPTLMHeadModel（GPT-1）相等（float64），KV 缓存、生成、过滤、参数个数、预训练命令。"""
import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, OpenAIGPTConfig, OpenAIGPTLMHeadModel

from lmcourse import pretrain
from lmcourse.models.gpt import GPT, GPTConfig, count_parameters, filter_logits

TINY = dict(vocab_size=50, n_positions=32, n_embd=24, n_layer=2, n_head=4)


def _ref(dtype=torch.float64, seed=0):
    """小的随机 GPT-2（dropout 全为 0，eager 注意力才给得出权重）和拷过权重的 GPT。"""
    torch.manual_seed(seed)
    config = GPT2Config(**TINY, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None,
                        eos_token_id=None, attn_implementation="eager")
    ref = GPT2LMHeadModel(config).to(dtype).eval()
    return ref, GPT.from_hf(ref)


def _ids(B=2, T=12, seed=1):
    return torch.randint(0, TINY["vocab_size"], (B, T), generator=torch.Generator().manual_seed(seed))


def _max_diff(a, b):
    return (a - b).abs().max().item()


def test_logits_match_hugging_face():
    ref, model = _ref()
    ids = _ids()
    assert model.wte.weight.dtype == torch.float64 and not model.training
    assert _max_diff(model(ids), ref(ids).logits) < 1e-9
    ref, model = _ref(torch.float32)
    assert _max_diff(model(ids), ref(ids).logits) < 1e-4


def test_post_ln_logits_match_hugging_face_openai_gpt():
    """GPT-1（后归一化、无 ln_f）：拷贝一个随机的小 OpenAIGPTLMHeadModel，float64 下打分相同，贪心续写相同。"""
    torch.manual_seed(0)
    config = OpenAIGPTConfig(**TINY, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    ref = OpenAIGPTLMHeadModel(config).double().eval()
    model = GPT.from_hf(ref)
    assert model.config.post_ln and isinstance(model.ln_f, torch.nn.Identity) and model.wte.weight.dtype == torch.float64
    ids = _ids()
    assert _max_diff(model(ids), ref(ids).logits) < 1e-9
    prompt = _ids(T=5)
    theirs = ref.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=15, do_sample=False,
                          pad_token_id=0)
    assert torch.equal(model.generate(prompt, 15, top_k=1), theirs)


def test_attention_weights_match_sdpa_and_hugging_face():
    ref, model = _ref()
    ids = _ids()
    logits, weights = model(ids, need_weights=True)
    assert _max_diff(logits, model(ids)) < 1e-9
    theirs = ref(ids, output_attentions=True).attentions
    assert len(weights) == len(theirs) == TINY["n_layer"]
    for w, t in zip(weights, theirs):
        assert w.shape == (2, TINY["n_head"], 12, 12) and _max_diff(w, t) < 1e-9
        assert w.triu(1).abs().max() == 0                        # 看不见右边
        assert _max_diff(w.sum(-1), torch.ones(2, TINY["n_head"], 12)) < 1e-12


def test_kv_cache_equals_full_forward():
    _, model = _ref()
    ids = _ids()
    full = model(ids)
    cache = []
    steps = torch.cat([model(ids[:, t:t + 1], cache=cache) for t in range(ids.size(1))], 1)
    assert _max_diff(steps, full) < 1e-9
    assert len(cache) == TINY["n_layer"] and cache[0][0].shape == (2, TINY["n_head"], 12, 6)
    cache = []                                                   # 先喂 5 个，再一次喂 7 个：新位置看得见缓存
    first = model(ids[:, :5], cache=cache)
    rest, weights = model(ids[:, 5:], cache=cache, need_weights=True)
    assert _max_diff(torch.cat([first, rest], 1), full) < 1e-9
    assert weights[0].shape == (2, TINY["n_head"], 7, 12)
    assert _max_diff(model(ids[:, 5:], cache=[(k[:, :, :5], v[:, :, :5]) for k, v in cache]),
                     rest) < 1e-9


def test_greedy_generate_matches_hugging_face_with_and_without_cache():
    ref, model = _ref()
    prompt = _ids(T=5)
    with_cache = model.generate(prompt, 15, top_k=1)
    assert torch.equal(with_cache, model.generate(prompt, 15, top_k=1, use_cache=False))
    theirs = ref.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=15, do_sample=False,
                          pad_token_id=0)
    assert torch.equal(with_cache, theirs) and with_cache.shape == (2, 20)
    long = model.generate(prompt, 40, top_k=1)             # 写到超过 n_positions=32：只看最后 32 个
    assert long.shape == (2, 45) and torch.equal(long, model.generate(prompt, 40, top_k=1, use_cache=False))
    assert torch.equal(long[:, :20], with_cache)


def test_sampling_is_reproducible_and_restores_training_mode():
    _, model = _ref()
    model.train()
    prompt = _ids(T=3)
    a = model.generate(prompt, 10, temperature=0.8, top_k=10, top_p=0.9, generator=torch.Generator().manual_seed(0))
    b = model.generate(prompt, 10, temperature=0.8, top_k=10, top_p=0.9, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (2, 13) and model.training
    assert torch.equal(model.generate(prompt, 0), prompt)


def test_filter_logits_top_k_and_top_p():
    logits = torch.tensor([[3.0, 1.0, 2.0, 0.0, -1.0], [0.0, 5.0, 0.0, 0.0, 0.0]])
    kept = filter_logits(logits, top_k=2).isfinite()
    assert kept.tolist() == [[True, False, True, False, False], [True, True, True, True, True]]  # 第二行并列
    assert filter_logits(logits, top_k=99).isfinite().all()
    probs = logits[0].softmax(-1)                                # 约 0.64, 0.09, 0.24, 0.03, 0.01
    assert filter_logits(logits[0], top_p=0.5).isfinite().tolist() == [True, False, False, False, False]
    assert filter_logits(logits[0], top_p=0.8).isfinite().tolist() == [True, False, True, False, False]
    assert probs[[0, 2]].sum() >= 0.8 > probs[0]
    assert filter_logits(logits, top_p=1e-6).isfinite().sum(-1).tolist() == [1, 1]   # 至少留一个
    assert filter_logits(logits, top_p=1.0).isfinite().all()
    assert filter_logits(logits[0], top_k=3, top_p=0.99).isfinite().tolist() == [True, True, True, False, False]


def test_post_ln_is_gpt1_structure():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**TINY, dropout=0.0, post_ln=True)).double().eval()
    assert isinstance(model.ln_f, torch.nn.Identity) and not any("ln_f" in k for k in model.state_dict())
    # 块的计算顺序（LayerNorm 在残差相加之后）由 test_post_ln_logits_match_hugging_face_openai_gpt 核对
    logits = model(_ids())
    assert logits.shape == (2, 12, TINY["vocab_size"]) and logits.isfinite().all()
    cache = []
    steps = torch.cat([model(_ids()[:, t:t + 1], cache=cache) for t in range(12)], 1)
    assert _max_diff(steps, logits) < 1e-9


@pytest.mark.parametrize("post_ln", [False, True])
def test_count_parameters_and_init(post_ln):
    config = GPTConfig(**TINY, post_ln=post_ln)
    model = GPT(config)
    assert count_parameters(config) == sum(p.numel() for p in model.parameters())
    assert model.lm_head.weight is model.wte.weight
    proj = 0.02 if post_ln else 0.02 / 2                        # GPT-1 一律 0.02；GPT-2 的 c_proj 再乘 1/√(2·2)
    for block in model.h:
        assert abs(block.attn.c_proj.weight.std().item() - proj) < 0.004
        assert abs(block.mlp.c_proj.weight.std().item() - proj) < 0.004
        assert abs(block.attn.c_attn.weight.std().item() - 0.02) < 0.004
        assert abs(block.mlp.c_fc.weight.std().item() - 0.02) < 0.004


def test_published_sizes():
    assert count_parameters(GPTConfig.gpt2()) == 124_439_808
    assert count_parameters(GPTConfig.gpt1()) == 116_534_784
    assert GPTConfig.gpt2() == GPTConfig() and GPTConfig.gpt1().post_ln


def test_nll_is_the_mean_cross_entropy():
    _, model = _ref()
    ids = _ids(T=9)
    loss, logits = model.nll(ids[:, :-1], ids[:, 1:])
    manual = -logits.log_softmax(-1).gather(-1, ids[:, 1:, None]).mean()
    assert logits.shape == (2, 8, TINY["vocab_size"]) and abs(loss.item() - manual.item()) < 1e-12


def test_bad_input_raises_with_the_argument_name():
    _, model = _ref()
    cases = [
        (lambda: model(_ids(T=33)), ValueError, "idx"),
        (lambda: model(_ids().float()), TypeError, "idx"),
        (lambda: model(_ids()[0]), ValueError, "idx"),
        (lambda: model(_ids(), cache=()), TypeError, "cache"),
        (lambda: model.generate(_ids(), 3, temperature=-1), ValueError, "temperature"),
        (lambda: model.generate(_ids(), 3, temperature=0), ValueError, "temperature"),
        (lambda: model.generate(_ids(T=33), 3), ValueError, "truncate"),
        (lambda: model.generate(_ids(), -1), ValueError, "max_new_tokens"),
        (lambda: model.generate(_ids(), 3, top_p=0), ValueError, "top_p"),
        (lambda: model.generate(_ids(), 3, top_k=0), ValueError, "top_k"),
        (lambda: filter_logits(torch.zeros(3), top_p=1.5), ValueError, "top_p"),
        (lambda: GPT.from_hf(torch.nn.Linear(2, 2)), TypeError, "ref"),
        (lambda: GPT.from_hf(GPT2LMHeadModel(GPT2Config(**TINY, activation_function="relu", bos_token_id=None,
                                                       eos_token_id=None))), ValueError, "ref"),
        (lambda: GPT.from_hf(OpenAIGPTLMHeadModel(OpenAIGPTConfig(**TINY, afn="relu"))), ValueError, "ref"),
        (lambda: GPTConfig(**dict(TINY, n_head=5)), ValueError, "n_head"),
        (lambda: GPTConfig(**TINY, dropout=1.0), ValueError, "dropout"),
        (lambda: GPTConfig(**TINY, activation="relu"), ValueError, "activation"),
        (lambda: count_parameters(TINY), TypeError, "config"),
    ]
    for call, error, name in cases:
        with pytest.raises(error, match=name):
            call()
    cache = []
    model(_ids(T=30), cache=cache)
    with pytest.raises(ValueError, match="idx"):                 # 缓存 30 + 新的 3 > 32
        model(_ids(T=3), cache=cache)


@pytest.mark.parametrize("post_ln", [False, True])
def test_pretrains_through_the_command(tmp_path, post_ln):
    out = tmp_path / "g"
    argv = ["gpt", "--preset", "tiny", "--steps", "3", "--batch-size", "4", "--seq-len", "32", "--quiet",
            "--eval-every", "3", "--threads", "1", "--out", str(out)] + (["--post-ln"] if post_ln else [])
    assert pretrain.main(argv) == 0
    assert {"model.pt", "config.json", "metrics.json"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["args"]["objective"] == "causal_lm" and config["model_config"]["post_ln"] is post_ln
    model = GPT(GPTConfig(**config["model_config"]))
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    assert model.config.n_embd == 64 and model.config.n_positions == 128
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["history"][-1]["step"] == 3 and metrics["final"]["valid_ppl"] > 1


def test_long_prompt_is_used_only_when_truncation_is_asked_for():
    """提示长于上下文时必须显式 truncate=True；截断后与只给最后 32 个 token 的提示结果相同。"""
    _, model = _ref()
    prompt = _ids(T=40)
    assert torch.equal(model.generate(prompt, 5, top_k=1, truncate=True)[:, -5:],
                       model.generate(prompt[:, -32:], 5, top_k=1)[:, -5:])


def test_sliding_window_perplexity_matches_a_direct_computation():
    """滑动窗口困惑度：开头的窗口全算，之后每个窗口只算后 stride 个位置；与逐窗口手算的结果相同。"""
    import math

    from lmcourse.models.gpt import perplexity

    _, model = _ref()
    stream = torch.randint(0, TINY["vocab_size"], (100,), generator=torch.Generator().manual_seed(1))
    context, stride = 16, 8
    total = count = 0.0
    for s in range(0, 100 - context, stride):
        x, y = stream[s:s + context], stream[s + 1:s + context + 1]
        with torch.no_grad():
            nll = torch.nn.functional.cross_entropy(model(x[None])[0], y, reduction="none")
        part = nll if s == 0 else nll[context - stride:]
        total, count = total + part.sum().item(), count + len(part)
    assert abs(perplexity(model, stream, context, stride, batch_size=3) - math.exp(total / count)) < 1e-9
    with pytest.raises(ValueError, match="stride"):
        perplexity(model, stream, context=8, stride=9)


def test_classifier_reads_the_last_real_token_and_its_lm_loss():
    """GPT-1 的分类头取最后一个真 token 处的输出：右侧补齐不改变结果；辅助损失是真 token 上的语言模型损失。"""
    from lmcourse.models.gpt import GPTClassifier

    _, model = _ref()
    clf = GPTClassifier(model, dropout=0.0).double().eval()
    ids = _ids(B=1, T=6)
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 6), torch.zeros(1, 4)], 1).long()
    a, b = clf(ids), clf(padded, None, mask)
    assert torch.allclose(a, b, atol=1e-12)
    c, lm = clf(padded, None, mask, with_lm_loss=True)
    assert torch.equal(c, b) and abs(lm.item() - model.nll(ids[:, :-1], ids[:, 1:])[0].item()) < 1e-9
    assert not any(isinstance(v, torch.Tensor) for v in vars(clf).values())   # 不在模块上留下上一次前向的激活
    with pytest.raises(TypeError, match="gpt"):
        GPTClassifier(torch.nn.Linear(2, 2))


def test_checkpoint_reproduces_its_recorded_perplexities():
    """第 8 章引用 gpt_news 说明里的测试困惑度：在整个测试集上按同样的滑动窗口重算，与记录相差不到 1%（fp16 存储）。"""
    from lmcourse import data
    from lmcourse.models import gpt

    model, meta = gpt.from_checkpoint()
    test = data.lm_stream("test")
    assert abs(gpt.perplexity(model, test, 256, 128) - meta["metrics"]["test_ppl"]) < 0.01 * meta["metrics"]["test_ppl"]
    wide = gpt.GPT(gpt.GPTConfig(**meta["wide"]["config"]))
    assert sum(p.numel() for p in wide.parameters()) == meta["wide"]["parameters"]
