"""预训练的吞吐量：旧的 BERT 训练步 vs 新的（同一模型尺寸、同一次运行），1 个进程 vs 2 个进程（gloo），fp32 vs bf16。

用法：python tools/bench_pretrain.py [--steps 20] [--skip-ddp] [--only-precision]
旧的训练步 = 第 7 章原来的做法：句对按本批最长补齐 [PAD]、注意力总是算出权重（逐步实现）、MLM+NSP。
新的训练步 = lmcourse.pretrain：定长打包的块、不要权重时用融合注意力、只在被遮位置出打分。
吞吐量按真实 token（不含 [PAD]）计。结果打印成 JSON，也写到 book/bench_pretrain.json（附录页引用的数字，测试核对两者一致）。
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def _old_nsp_pairs(sentences, generator):
    """旧做法的句对：每句配上真正的下一句（标签 1）或随机的一句（标签 0），各一半。"""
    n = len(sentences)
    coin = torch.rand(n - 1, generator=generator) < 0.5
    other = torch.randint(0, n, (n - 1,), generator=generator)
    pairs = []
    for i in range(n - 1):
        j = int(other[i])
        real = coin[i] or j in (i, i + 1)
        pairs.append((sentences[i], sentences[i + 1 if real else j], int(real)))
    return pairs


def _old_batch(pairs, tokenizer, max_len, generator):
    """旧做法的一批：句对按本批最长补齐，逐个 token 抽签遮 15%。"""
    from lmcourse.masking import mask_tokens
    from lmcourse.models.bert import collate, encode_pair

    batch = collate([encode_pair(tokenizer, a, b, max_len) for a, b, _ in pairs], tokenizer.pad_id)
    batch["input_ids"], batch["mlm_labels"] = mask_tokens(batch["input_ids"], tokenizer, 0.15, generator)
    batch["nsp_labels"] = torch.tensor([y for _, _, y in pairs])
    return batch


def old_step_tokens_per_second(steps, batch_size=64, threads=2):
    """旧做法：NSP 句对、补齐、注意力带权重。"""
    from lmcourse import data, num_threads, set_seed
    from lmcourse.models.bert import BertConfig, BertForPreTraining
    from lmcourse.train import adamw
    from lmcourse.text import normalize_numbers

    set_seed(0)
    num_threads(threads)
    tok = data.bert_tokenizer()
    model = BertForPreTraining(BertConfig.small(len(tok)))
    opt = adamw(model, 1e-3)
    gen = torch.Generator().manual_seed(0)
    texts = [normalize_numbers(t) for t in data.peoples_daily_texts("train")[:20000]]
    pairs = _old_nsp_pairs(texts, gen)
    batches = [_old_batch(pairs[i * batch_size:(i + 1) * batch_size], tok, 128, gen) for i in range(steps + 1)]

    def step(b):
        picked = b["mlm_labels"] != -100
        seq, pooled, _ = model.bert(b["input_ids"], b["token_type_ids"], b["attention_mask"], need_weights=True)
        h = model.mlm_norm(F.gelu(model.mlm_dense(seq[picked])))
        logits = h @ model.bert.embeddings.word_embeddings.weight.T + model.mlm_bias
        loss = F.cross_entropy(logits, b["mlm_labels"][picked]) + F.cross_entropy(model.nsp(pooled), b["nsp_labels"])
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(batches[0])                                           # 预热
    t = time.perf_counter()
    for b in batches[1:]:
        step(b)
    seconds = time.perf_counter() - t
    real = sum(int(b["attention_mask"].sum()) for b in batches[1:])
    padded = sum(b["attention_mask"].numel() for b in batches[1:])
    return {"tokens_per_second": real / seconds, "pad_fraction": 1 - real / padded}


def new_step_tokens_per_second(steps, batch_size=64, threads=2):
    """新做法：打包的定长块、融合注意力、只做 MLM。"""
    from lmcourse import objectives, pretrain, num_threads, set_seed
    from lmcourse.train import adamw

    set_seed(0)
    num_threads(threads)
    tok, normalize = pretrain.tokenizer_for("bert")
    model, _ = pretrain.MODELS["bert"].build("small", len(tok), 128, 0.1)
    objective = objectives.get("mlm", tokenizer=tok)
    opt = adamw(model, 1e-3)
    get_batch = pretrain.Batches(objective, "news", tok, normalize=normalize, batch_size=batch_size, seq_len=128, seed=0)
    batches = [get_batch(i) for i in range(1, steps + 2)]

    def step(b):
        loss, n = objective(model, b)
        opt.zero_grad()
        (loss / n).backward()
        opt.step()

    step(batches[0])
    t = time.perf_counter()
    for b in batches[1:]:
        step(b)
    seconds = time.perf_counter() - t
    return {"tokens_per_second": sum(b["input_ids"].numel() for b in batches[1:]) / seconds, "pad_fraction": 0.0}


def ddp_tokens_per_second(nproc, steps):
    """用 pretrain 命令跑 steps 步（tiny 之外的 small 尺寸），读 metrics.json 里的吞吐量。"""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["-m", "lmcourse.pretrain", "bert", "--preset", "small", "--steps", str(steps), "--batch-size", "64",
               "--eval-every", str(10 * steps), "--quiet", "--out", tmp + "/run"]
        if nproc == 1:
            cmd = [sys.executable] + cmd
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"] + cmd
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        m = json.loads(Path(tmp, "run", "metrics.json").read_text())
    return {"tokens_per_second": m["tokens_per_second"], "threads_per_process": 2 // nproc}


def precision_runs(steps=300):
    """--precision fp32 与 bf16：小 BERT、小 GPT 各用 pretrain 命令训练 steps 步（2 个线程，dropout 0），
    记吞吐量和最后的验证损失。两种精度交替着跑，机器忙闲对两边的影响差不多。"""
    out = {}
    for model in ("bert", "gpt"):
        for precision in ("fp32", "bf16"):
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [sys.executable, "-m", "lmcourse.pretrain", model, "--preset", "small", "--corpus", "news",
                       "--steps", str(steps), "--batch-size", "8", "--seq-len", "128", "--dropout", "0",
                       "--eval-every", str(steps), "--threads", "2", "--precision", precision, "--quiet",
                       "--out", tmp + "/run"]
                subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONWARNINGS="ignore"), capture_output=True)
                m = json.loads(Path(tmp, "run", "metrics.json").read_text())
            out[f"{model}_{precision}"] = {"tokens_per_second": m["tokens_per_second"],
                                           "valid_loss": m["final"]["valid_loss"], "steps": steps}
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--skip-ddp", action="store_true")
    p.add_argument("--only-precision", action="store_true", help="只重量 fp32 / bf16 这一组，其余数字保留")
    a = p.parse_args()
    path = ROOT / "book" / "bench_pretrain.json"
    if a.only_precision:
        result = json.loads(path.read_text())
    else:
        result = {"old_step": old_step_tokens_per_second(a.steps), "new_step": new_step_tokens_per_second(a.steps)}
        result["speedup"] = result["new_step"]["tokens_per_second"] / result["old_step"]["tokens_per_second"]
        if not a.skip_ddp:
            result["ddp_1_process"] = ddp_tokens_per_second(1, 4 * a.steps)
            result["ddp_2_processes"] = ddp_tokens_per_second(2, 4 * a.steps)
    result["precision"] = precision_runs()
    result["cpu"] = _cpu_name()
    print(json.dumps(result, ensure_ascii=False, indent=1))
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


def _cpu_name():
    """CPU 型号和它有没有 bf16 指令（AVX512-BF16 / AMX）：bf16 在 CPU 上快不快取决于它。"""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": "unknown", "bf16_instructions": None}
    name = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")), "?")
    return {"model": name, "bf16_instructions": "avx512_bf16" in flags or "amx_bf16" in flags}


if __name__ == "__main__":
    main()
