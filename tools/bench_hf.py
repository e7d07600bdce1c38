"""本包的训练步与 Hugging Face transformers 的同尺寸模型比速度，交替着量（同一次运行、同一台机器）。

用法：python tools/bench_hf.py [--threads 1] [--seconds 3]
- BERT：本包的小 BERT（预训练命令的 small 尺寸、只在被遮的位置出打分）vs HF 的 BertForMaskedLM（同宽同深，
  同样只对被遮的位置过输出层），一步 = 前向 + 反向 + AdamW 更新，8 × 128 个字，遮 40%；
- GPT：本包的小 GPT vs HF 的 GPT2LMHeadModel，同宽同深，8 × 256 个字；
- 生成：带键值缓存逐字生成 120 个字。
再按 FlopCounterMode 数出的运算量（注意力按数学实现数）和量出的 fp32 矩阵乘法峰值，算本包 BERT 一步的算力利用率。
结果打印成 JSON。
"""
import argparse
import json

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertConfig as HFBertConfig
from transformers import BertForMaskedLM, GPT2Config, GPT2LMHeadModel

from lmcourse import data, objectives, pretrain
from lmcourse.timing import best_time


def best(fn, seconds):
    """fn 跑一次的最短用时（秒）：全书唯一的计时办法 timing.best_time，用当前的线程数。"""
    return best_time(fn, min_run_time=seconds)


def matmul_peak(seconds):
    """fp32 矩阵乘法的峰值（FLOP/s）：1024 × 1024 的方阵相乘。"""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return 2 * 1024 ** 3 / best(lambda: a @ b, seconds)


def bert_steps():
    tok = data.bert_tokenizer()
    obj = objectives.get("mlm", tokenizer=tok, p=0.4)
    batch = pretrain.Batches(obj, "news", tok, normalize=True, batch_size=8, seq_len=128, seed=0)(1)
    ours, config = pretrain.MODELS["bert"].build("small", len(tok), 128, 0.0)
    hf = BertForMaskedLM(HFBertConfig(vocab_size=len(tok), hidden_size=config.hidden_size,
                                      num_hidden_layers=config.num_hidden_layers,
                                      num_attention_heads=config.num_attention_heads,
                                      intermediate_size=config.intermediate_size, max_position_embeddings=128,
                                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    picked = batch["mlm_labels"] != -100
    target = batch["mlm_labels"][picked]

    def ours_loss():
        loss, n = obj(ours, batch)
        return loss / n

    def hf_loss():                                                    # 只对被遮的位置过输出层，与本包相同
        h = hf.bert(batch["input_ids"], token_type_ids=batch["token_type_ids"]).last_hidden_state
        return F.cross_entropy(hf.cls(h[picked]), target)

    return ours, ours_loss, hf, hf_loss, batch["input_ids"].numel()


def gpt_steps():
    tok = data.lm_tokenizer()
    ours, config = pretrain.MODELS["gpt"].build("small", len(tok), 256, 0.0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=config.n_embd, n_layer=config.n_layer,
                                    n_head=config.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    x = data.lm_stream("train")[:8 * 257].view(8, 257)

    def ours_loss():
        return F.cross_entropy(ours(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())

    def hf_loss():
        return F.cross_entropy(hf(x[:, :-1]).logits.flatten(0, 1), x[:, 1:].flatten())

    return ours, ours_loss, hf, hf_loss, x[:, 1:].numel()


def step(model, loss_fn):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def run():
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()
    return run


def interleaved(pairs, seconds, rounds=3):
    """两边轮流各量 rounds 次，各取最快的一次：机器忙闲对两边的影响差不多。"""
    out = {name: float("inf") for name in pairs}
    for _ in range(rounds):
        for name, fn in pairs.items():
            out[name] = min(out[name], best(fn, seconds))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0)
    a = p.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    result = {"threads": a.threads}
    for name, make in (("bert", bert_steps), ("gpt", gpt_steps)):
        ours, ours_loss, hf, hf_loss, tokens = make()
        t = interleaved({"ours": step(ours.train(), ours_loss), "hf": step(hf.train(), hf_loss)}, a.seconds)
        result[name] = {"ours_tokens_per_second": tokens / t["ours"], "hf_tokens_per_second": tokens / t["hf"],
                        "ratio": t["hf"] / t["ours"]}
        if name == "bert":
            with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
                step(ours, ours_loss)()
            flops = counter.get_total_flops()                           # 前向 + 反向的运算数
            peak = matmul_peak(a.seconds)
            result[name].update({"step_gflops": flops / 1e9, "matmul_peak_gflops": peak / 1e9,
                                 "utilisation": flops / t["ours"] / peak})
    gpt, _, hf, _, _ = gpt_steps()
    prompt = data.lm_stream("train")[:16].view(1, 16)
    gen = interleaved({"ours": lambda: gpt.eval().generate(prompt, 120, top_k=1),
                       "hf": lambda: hf.eval().generate(prompt, max_new_tokens=120, do_sample=False, min_new_tokens=120,
                                                        pad_token_id=0)}, a.seconds, rounds=2)
    result["generate"] = {"ours_tokens_per_second": 120 / gen["ours"], "hf_tokens_per_second": 120 / gen["hf"],
                          "ratio": gen["hf"] / gen["ours"]}
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return result


if __name__ == "__main__":
    main()
