"""离开 CPU 之前先跑的冒烟测试：每行打印 PASS 或 FAIL。

在 Colab 的 GPU 运行时（或任何一台机器）上：
    python tools/gpu_smoke.py
        每个模型的预训练各跑几步，三种精度（fp32 / bf16 / fp16）各一次；再微调一个小分类器几步。
在有 N 块 GPU 的机器上另加：
    python tools/gpu_smoke.py --procs N
        用 torchrun 起 N 个进程训练几步，与 1 个进程的结果比参数（两者应在浮点误差内相同）。
没有 GPU 时一切照样在 CPU 上跑，只是不试 fp16（它只用于 CUDA）：CI 跑的就是这条路。
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from lmcourse import data, pretrain, set_seed
from lmcourse.finetune import FineTuneConfig, fine_tune, predict, preprocess
from lmcourse.models.bert import BertConfig, BertForSequenceClassification

TINY = ["--preset", "tiny", "--batch-size", "4", "--seq-len", "32", "--warmup", "0", "--quiet"]


def report(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'}  {name}  {detail}", flush=True)
    return ok


def pretraining(model, precision, steps, out):
    """model 的预训练跑 steps 步：损失有限、确实在 GPU（有的话）上跑、精度记进了 metrics。"""
    metrics = pretrain.run([model, *TINY, "--steps", str(steps), "--eval-every", str(steps),
                            "--precision", precision, "--out", str(out)])
    loss = metrics["final"]["train_loss"]
    layout = metrics["layout"]
    want = "cuda" if torch.cuda.is_available() else "cpu"
    ok = math.isfinite(loss) and layout["device"] == want and layout["precision"] == precision
    return report(f"预训练 {model:5s} {precision}", ok, f"训练损失 {loss:.3f}，{layout}")


def finetuning(steps):
    """小 BERT 分类器在评论上微调几步，再预测：批次跟着模型搬到 GPU。"""
    set_seed(0)
    tok = data.bert_tokenizer()
    reviews = data.load_sentiment()
    train = preprocess(reviews["train"][:4 * steps], tok)
    valid = preprocess(reviews["valid"][:16], tok)
    model = BertForSequenceClassification(BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2,
                                                     num_attention_heads=2, intermediate_size=128), pooling="mean")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    hist, _ = fine_tune(model, train, valid, FineTuneConfig(batch_size=4, epochs=1.0), tok, progress=False)
    scores = predict(model, valid)
    ok = math.isfinite(hist.last["train_loss"]) and len(scores) == len(valid)
    return report("微调 BERT 分类器", ok, f"{device}，训练损失 {hist.last['train_loss']:.3f}")


def processes(n, steps, root):
    """1 个进程与 torchrun 的 n 个进程各训练 steps 步（dropout 0），比最后的参数。"""
    args = ["-m", "lmcourse.pretrain", "bert", *TINY, "--steps", str(steps), "--dropout", "0",
            "--batch-size", str(4 * n)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, *args, "--out", str(root / "one")], check=True, env=env)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}", *args,
                    "--out", str(root / "many")], check=True, env=env)
    one, many = (torch.load(root / d / "model.pt", weights_only=True) for d in ("one", "many"))
    diff = max((one[k].float() - many[k].float()).abs().max().item() for k in one)
    world = json.loads((root / "many" / "config.json").read_text())["world_size"]
    return report(f"1 个进程 vs {n} 个进程", diff < 1e-4 and world == n, f"参数最大差 {diff:.2e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--procs", type=int, default=0, help="另用 torchrun 起这么多个进程，与 1 个进程比参数")
    args = p.parse_args(argv)
    precisions = pretrain.PRECISIONS if torch.cuda.is_available() else ("fp32", "bf16")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for model in pretrain.MODELS:
            for precision in precisions:
                try:
                    results.append(pretraining(model, precision, args.steps, root / f"{model}_{precision}"))
                except Exception as e:                                     # 一行失败不挡住其余各行
                    results.append(report(f"预训练 {model:5s} {precision}", False, f"{type(e).__name__}: {e}"))
        try:
            results.append(finetuning(args.steps))
        except Exception as e:
            results.append(report("微调 BERT 分类器", False, f"{type(e).__name__}: {e}"))
        if args.procs:
            results.append(processes(args.procs, args.steps, root))
    print(f"{sum(results)} / {len(results)} 项通过")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
