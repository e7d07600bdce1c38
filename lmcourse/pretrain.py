"""预训练命令：python -m lmcourse.pretrain MODEL --preset P --corpus C --steps N --out DIR …

这个文件只管命令本身：模型表（尺寸在各模型文件的 SIZES 里）、目标的工厂、参数、多进程的设置和整个流程，
外加 BERT 结构的模型被遮字困惑度的评估口径（masked_metrics）；
流式的数据管道（语料 → 定长的块 → 每个进程的批次）在 lmcourse/data/stream.py，训练循环在 lmcourse/train.py。
命令的设置也可以写成数据：Command（字段与命令行参数一一对应），仓库的配方（recipes/）就这样记下每个检查点的命令。
同一条命令从笔记本电脑的 CPU 跑到 GPU 集群：在 torchrun 下自动用 DistributedDataParallel
（CPU 用 gloo，GPU 用 NCCL），每个进程只取全局批次里属于自己的那几个样本。
第 e 个块的掩码只由 (种子, e) 决定，所以同样的种子、全局批大小和 dropout=0 时，进程数不影响结果。

DIR 里写 model.pt（state_dict，可用 weights_only=True 读）、config.json、metrics.json，
以及续训用的 state.pt（--resume 时从它接着训练）。
"""
import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from lmcourse import data, get_device, num_threads, objectives, set_seed
from lmcourse._check import Config, check_choice, check_int, check_number, check_type
from lmcourse.ckpt import vocab_hash
from lmcourse.metrics import perplexity
# 命令的数据管道；各章也从这里取 pretrain.Batches、pretrain.pack 等
from lmcourse.data.stream import (CORPORA, Batches, Prefetch, block_stream, check_corpus, corpus_lines,  # noqa: F401
                                  eval_batches, pack)
from lmcourse.models import bert, elmo, gpt, nnlm, rnn, xlnet
from lmcourse.models.bert import BertConfig, BertForPreTraining
from lmcourse.models.elmo import BiLM, ELMoConfig
from lmcourse.models.gpt import GPT, GPTConfig
from lmcourse.models.nnlm import NNLM, NNLMConfig
from lmcourse.models.rnn import CharRNNLM, RNNLMConfig
from lmcourse.models.xlnet import XLNetConfig, XLNetLMHeadModel
from lmcourse.train import SCHEDULES, adamw, fit, schedule

PRESETS = ("tiny", "small", "medium", "base")


# ---------- 模型与尺寸（各尺寸定义在模型文件的 SIZES 里） ----------
def _bert(preset, vocab_size, seq_len, dropout, post_ln=False):
    config = BertConfig(vocab_size=vocab_size, max_position_embeddings=max(128, seq_len),
                        hidden_dropout_prob=dropout, norm_first=preset != "base" and not post_ln,
                        alibi=preset != "base" and not post_ln, **bert.SIZES[preset])   # 小尺寸：前归一化 + ALiBi
    return BertForPreTraining(config), config


def _gpt(preset, vocab_size, seq_len, dropout, post_ln=False):
    config = GPTConfig(vocab_size=vocab_size, n_positions=max(128, seq_len), dropout=dropout, post_ln=post_ln,
                       **gpt.SIZES[preset])                # post_ln=True 即 GPT-1 的结构
    return GPT(config), config


def _sized(model_cls, config_cls, sizes):
    """只要字表大小、dropout 和尺寸的模型（NNLM、LSTM、ELMo、XLNet）的建造函数。"""
    def build(preset, vocab_size, seq_len, dropout):
        config = config_cls(vocab_size=vocab_size, dropout=dropout, **sizes[preset])
        return model_cls(config), config
    return build


@dataclass(frozen=True)
class ModelSpec:
    """pretrain 命令里的一个模型：怎样按尺寸建出来、用哪个字表、默认训练什么目标。"""

    build: Callable          # build(preset, vocab_size, seq_len, dropout) -> (model, config)
    tokenizer: str           # "lm"（人民日报的字表）或 "bert"（含评论、数字归一化）
    objective: str           # 默认目标，见 lmcourse.objectives


MODELS = MappingProxyType({
    "nnlm": ModelSpec(_sized(NNLM, NNLMConfig, nnlm.SIZES), "lm", "causal_lm"),
    "lstm": ModelSpec(_sized(CharRNNLM, RNNLMConfig, rnn.SIZES), "lm", "causal_lm"),
    "elmo": ModelSpec(_sized(BiLM, ELMoConfig, elmo.SIZES), "lm", "bilm"),
    "bert": ModelSpec(_bert, "bert", "mlm"),
    "gpt": ModelSpec(_gpt, "lm", "causal_lm"),
    "xlnet": ModelSpec(_sized(XLNetLMHeadModel, XLNetConfig, xlnet.SIZES), "bert", "plm"),   # small 与小 BERT 同宽同深
    "ernie": ModelSpec(_bert, "bert", "ernie"),        # ERNIE 1.0 的结构就是 BERT，只换掩码
})


def tokenizer_for(model_name):
    """(字表, 是否把数字换成 #NUM#)：BERT 系用含评论的字表并归一化数字，其余用人民日报的字表。"""
    kind = MODELS[model_name].tokenizer
    return data.tokenizer(kind), kind == "bert"


def make_objective(name, tokenizer, model_config, mask_prob=0.15, total_examples=None):
    """按名字建目标（见 lmcourse.objectives）；total_examples 是训练的总样本数（分阶段的 ERNIE 要用）。"""
    return objectives.OBJECTIVES[check_choice("objective", name, tuple(objectives.OBJECTIVES))].build(
        tokenizer, model_config, mask_prob, total_examples)


# ---------- 评估：被遮字的困惑度（第 7、11 章和各 BERT 结构的检查点用同一个口径） ----------
def masked_metrics(model, split, mask_prob=0.15, corpus="news", by_input=False):
    """语料（默认人民日报）某个划分上的掩码字困惑度与准确率：按原顺序打包成 128 字的块，掩码用固定种子，全部块都算。

    指标算的是按 80/10/10 选中的全部位置。by_input=True 时在同一遍里另按输入在该位置显示的是什么分开统计：
    "mask"（换成了 [MASK]）、"random"（换成了随机字）、"same"（原字不变），各给 share / ppl / acc。
    """
    tok = data.bert_tokenizer()
    objective = objectives.get("mlm", tokenizer=tok, p=mask_prob)
    batches = eval_batches(objective, tok, True, 128, split=split, blocks=10 ** 9, corpus=corpus)
    if not by_input:
        m = objective.metrics(model, batches)
        return {"mlm_ppl": m["valid_ppl"], "mlm_acc": m["valid_acc"]}
    sums = {k: [0, 0, 0.0] for k in ("mask", "random", "same")}     # 位置数、猜对数、损失之和
    was = model.training
    model.eval()
    with torch.no_grad():
        for b in batches:
            picked = b["mlm_labels"] != -100
            logits, _ = model(b["input_ids"], b["token_type_ids"], None, picked)
            target, shown = b["mlm_labels"][picked], b["input_ids"][picked]
            nll = F.cross_entropy(logits, target, reduction="none")
            hit = logits.argmax(-1) == target
            is_mask, is_same = shown == tok.mask_id, shown == target
            for k, m in (("mask", is_mask), ("same", is_same), ("random", ~is_mask & ~is_same)):
                sums[k][0] += int(m.sum())
                sums[k][1] += int(hit[m].sum())
                sums[k][2] += float(nll[m].sum())
    model.train(was)
    n = sum(v[0] for v in sums.values())
    out = {"mlm_ppl": perplexity(sum(v[2] for v in sums.values()) / n), "mlm_acc": sum(v[1] for v in sums.values()) / n}
    out["by_input"] = {k: {"share": c / n, "ppl": perplexity(s / c), "acc": h / c} for k, (c, h, s) in sums.items()}
    return out


# ---------- 命令行 ----------

class _Parser(argparse.ArgumentParser):
    """类型不对（如 --steps abc）时不自己打印英文用法后退出，而是抛 ValueError，由 main 打印一行“错误：”。"""

    def error(self, message):
        raise ValueError(f"命令行参数有误：{message}")


def parser():
    p = _Parser(prog="python -m lmcourse.pretrain", description="用同一个训练循环预训练课程里的模型")
    p.add_argument("model", help=f"模型：{'、'.join(MODELS)}")
    p.add_argument("--preset", default="small", help="尺寸：tiny / small / medium / base")
    p.add_argument("--objective", default=None, help="目标（默认随模型）：" + "、".join(objectives.OBJECTIVES))
    p.add_argument("--corpus", default="news", help="news / reviews / both，或逗号分隔的 UTF-8 文本文件")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64, help="全局批大小（所有进程合计）")
    p.add_argument("--accum", type=int, default=1, help="梯度累积的小批数")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=float, default=0.05, help="升温：步数，或 [0, 1) 的比例")
    p.add_argument("--schedule", default="linear", help=" / ".join(SCHEDULES))
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--mask-prob", type=float, default=0.15, help="MLM 的掩码比例；XLNet 的 plm 里是预测对象的比例 1/K")
    p.add_argument("--post-ln", action="store_true", help="BERT 用原版结构：后归一化、无 ALiBi（base 尺寸总是原版）")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="每个进程的 torch 线程数（默认 CPU 核数 / 进程数）")
    p.add_argument("--workers", type=int, default=0, help="提前做批次的子进程数（0 = 在训练的线程里做）；不影响结果")
    p.add_argument("--precision", default=None,
                   help="fp32 / bf16 / fp16（fp16 带梯度缩放，只用于 CUDA）；默认 CUDA 上 bf16、CPU 上 fp32")
    p.add_argument("--out", required=True, help="输出目录")
    p.add_argument("--resume", action="store_true", help="从 OUT/state.pt 接着训练")
    p.add_argument("--init", default=None,
                   help="从已有的权重出发（继续预训练，如在评论上做领域自适应）：检查点名（如 bert_news）或含 model.pt 的目录")
    p.add_argument("--quiet", action="store_true", help="不显示进度条")
    return p


@dataclass(frozen=True)
class Command(Config):
    """一条预训练命令的设置：字段与 parser() 的参数一一对应（名字、默认值相同），只少了 --out、--resume、--quiet。

    配方把命令写成常量，变体用 dataclasses.replace 得到；argv() 给出命令行参数，
    例如 run(command.argv() + ["--out", DIR])。构造时就检查各项设置（与命令行同一份检查）。
    """

    model: str
    preset: str = "small"
    objective: str | None = None
    corpus: str = "news"
    steps: int = 1000
    batch_size: int = 64
    accum: int = 1
    seq_len: int = 128
    lr: float = 1e-3
    warmup: float = 0.05
    schedule: str = "linear"
    weight_decay: float = 0.01
    dropout: float = 0.1
    mask_prob: float = 0.15
    post_ln: bool = False
    seed: int = 0
    eval_every: int | None = None
    threads: int | None = None
    workers: int = 0
    precision: str | None = None
    init: str | None = None

    def __post_init__(self):
        check_settings(self)

    def argv(self):
        """命令行参数的列表：[model, "--preset", "small", …]；值为 None 或 False 的项不写，True 写成单独的开关。"""
        argv = [self.model]
        for f in fields(self)[1:]:
            value, flag = getattr(self, f.name), "--" + f.name.replace("_", "-")
            if value is True:
                argv.append(flag)
            elif value is not None and value is not False:
                argv += [flag, str(value)]
        return argv


# 续训（--resume）时必须与第一次相同的参数；--steps（可以接着多训几步）、--eval-every、--threads、--workers、--quiet 可以改
FIXED_ON_RESUME = ("model", "preset", "objective", "corpus", "batch_size", "accum", "seq_len", "lr", "warmup",
                   "schedule", "weight_decay", "dropout", "mask_prob", "post_ln", "seed", "init", "precision")


def check_settings(args):
    """命令的设置本身（不看文件、目录和进程数）：check_args 与 Command 共用这一份检查。"""
    check_choice("model", args.model, tuple(MODELS))
    check_choice("preset", args.preset, PRESETS)
    if args.objective is not None:
        check_choice("objective", args.objective, tuple(objectives.OBJECTIVES))
    check_type("corpus", args.corpus, str, "字符串（语料名或文本文件路径）")
    check_choice("schedule", args.schedule, SCHEDULES)
    if args.precision is not None:
        check_choice("precision", args.precision, PRECISIONS)
    for name in ("steps", "batch_size", "seq_len", "accum"):
        check_int(name, getattr(args, name), minimum=1)
    check_int("workers", args.workers, minimum=0)
    check_int("seed", args.seed, minimum=0)
    for name in ("lr", "warmup", "weight_decay", "dropout", "mask_prob"):
        check_number(name, getattr(args, name))
    if not 0 <= args.dropout < 1:
        raise ValueError(f"参数 dropout 应在 [0, 1) 内，收到 {args.dropout}")
    if not args.lr > 0:
        raise ValueError(f"参数 lr 应大于 0，收到 {args.lr}")
    if not 0 < args.mask_prob < 1:
        raise ValueError(f"参数 mask_prob 应在 (0, 1) 内，收到 {args.mask_prob}")
    if not args.warmup >= 0:
        raise ValueError(f"参数 warmup 应不小于 0，收到 {args.warmup}")
    if not args.weight_decay >= 0:
        raise ValueError(f"参数 weight_decay 应不小于 0，收到 {args.weight_decay}")
    check_type("post_ln", args.post_ln, bool, "布尔值")
    for name in ("eval_every", "threads"):
        if getattr(args, name) is not None:
            check_int(name, getattr(args, name), minimum=1)
    if args.init is not None:
        check_type("init", args.init, str, "字符串（检查点名或目录）")


def check_args(args, world=1):
    """在动任何文件之前检查参数；出错抛 ValueError（命令行里变成一行中文报错）。"""
    check_settings(args)
    if args.precision == "fp16" and not torch.cuda.is_available():   # CPU 上的 LSTM 内核不支持 fp16，bf16 也不需要梯度缩放
        raise ValueError("参数 precision=fp16 只用于 CUDA；CPU 上请用 bf16 或 fp32")
    if args.batch_size % world:
        raise ValueError(f"参数 batch_size={args.batch_size} 应能被进程数 {world} 整除")
    check_corpus(args.corpus)
    if args.init is not None:
        init_state(args.init)
    out = Path(args.out)
    if args.resume:
        config = out / "config.json"
        if not (out / "state.pt").exists() or not config.exists():
            raise ValueError(f"参数 resume：目录 {out} 里没有可续训的 state.pt 和 config.json")
        old = json.loads(config.read_text(encoding="utf-8"))
        for key in FIXED_ON_RESUME:                         # 换了其中任何一个，训练的就不再是同一个问题
            mine = {"objective": args.objective or MODELS[args.model].objective,
                    "precision": precision_for(args.precision, get_device())[0]}.get(key, getattr(args, key))
            theirs = old["args"].get(key, mine if key == "precision" else None)   # 有 --precision 之前的训练没记它
            if theirs != mine:
                raise ValueError(f"参数 resume：目录 {out} 是 {key}={theirs!r} 的训练，"
                                 f"与这次的 {mine!r} 不同")
    elif (out / "model.pt").exists() or (out / "state.pt").exists():
        raise ValueError(f"参数 out：目录 {out} 里已有训练结果，不会覆盖；接着训练请加 --resume，或换一个目录")


def init_state(source, tokenizer=None):
    """--init 的权重：lmcourse.ckpt 的检查点名，或 pretrain 命令写出的目录（读其中的 model.pt）。"""
    from lmcourse import ckpt

    if source in ckpt.NAMES:
        return ckpt.load_state(source, tokenizer)[0]
    path = Path(source) / "model.pt"
    if not path.is_file():
        raise ValueError(f"参数 init 应为检查点名（{'、'.join(ckpt.NAMES)}）或含 model.pt 的目录，收到 {source!r}")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_init(model, source, tokenizer):
    """把 --init 的权重装进刚建好的模型；形状或参数名对不上时报错（例如尺寸 preset 不同）。"""
    state, mine = init_state(source, tokenizer), model.state_dict()
    bad = sorted(set(state) ^ set(mine)) or [k for k in mine if state[k].shape != mine[k].shape]
    if bad:
        raise ValueError(f"参数 init：{source} 的权重与这次建的模型对不上（{bad[0]} 等 {len(bad)} 项），请检查 model 与 preset")
    model.load_state_dict(state)


def setup_distributed():
    """torchrun 下初始化进程组（GPU 用 NCCL，CPU 用 gloo），返回 (rank, world, device)。"""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, get_device()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local)
    return dist.get_rank(), world, torch.device(f"cuda:{local}" if cuda else "cpu")


PRECISIONS = ("fp32", "bf16", "fp16")


def precision_for(name, device):
    """--precision 落到这台设备上：没给时 CUDA 用 bf16、CPU 用 fp32。返回 (名字, 自动混合精度的 dtype 或 None)。"""
    name = name or ("bf16" if device.type == "cuda" else "fp32")
    return name, {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


class _Autocast:
    """用自动混合精度（bf16 或 fp16）算目标的损失；参数和优化器状态仍是 fp32。"""

    def __init__(self, objective, device_type, dtype):
        self.objective, self.device_type, self.dtype = objective, device_type, dtype

    def __call__(self, model, batch):
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.objective(model, batch)


class _DDP(torch.nn.parallel.DistributedDataParallel):
    """DDP 只在经过 forward 的调用上同步梯度。目标调用 model.nll(...) 这类方法时（LSTM、ELMo），
    把该方法暂时当作模块的 forward，经 DDP 的 forward 走一遍；没有这一层，DDP 上根本找不到 nll。"""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            method = getattr(self.module, name)                 # 模块上也没有时照常抛 AttributeError
            if not callable(method):
                return method
            return lambda *args, **kwargs: self._redirect(method, args, kwargs)

    def _redirect(self, method, args, kwargs):
        self.module.forward = method                            # 实例属性盖过类里的 forward
        try:
            return self(*args, **kwargs)
        finally:
            del self.module.forward


def run(argv=None):
    """命令行入口的全部工作；返回 metrics 字典（只在 0 号进程有意义）。"""
    args = parser().parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    check_args(args, world)
    rank, world, device = setup_distributed()
    set_seed(args.seed)
    num_threads(args.threads or max(1, (os.cpu_count() or 2) // world))
    out = Path(args.out)
    spec = MODELS[args.model]
    args.objective = args.objective or spec.objective
    tok, normalize = tokenizer_for(args.model)
    extra = {"post_ln": True} if args.post_ln else {}
    model, config = spec.build(args.preset, len(tok), args.seq_len, args.dropout, **extra)
    if args.init is not None and not args.resume:
        load_init(model, args.init, tok)
    objective = make_objective(args.objective, tok, config, args.mask_prob,
                               total_examples=args.steps * args.batch_size * args.accum)
    model.to(device)
    args.precision = precision_for(args.precision, device)[0]       # config.json 记下真正用的精度，续训时换了设备也查得出
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(
            {"args": vars(args), "model_config": asdict(config), "vocab_hash": vocab_hash(tok), "world_size": world},
            ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    # DDP 默认每一步都等齐所有参数的梯度。有的参数在某些步用不上：只做 MLM 时 BERT / ERNIE 的 NSP 头和池化层、没有段编号时
    # XLNet 的段偏置、自适应 softmax 里这一批没有字落进去的尾部簇（LSTM、ELMo）。只在这些情况下才让 DDP 每步去找（多一次全归约）
    find_unused = args.model in ("lstm", "elmo", "xlnet") or (args.model in ("bert", "ernie") and args.objective != "mlm_nsp")
    wrapped = _DDP(model, find_unused_parameters=find_unused) if world > 1 else model
    opt = adamw(model, args.lr, args.weight_decay)
    sched = schedule(opt, args.steps, args.warmup if args.warmup < 1 else int(args.warmup), args.schedule)
    get_batch = Prefetch(Batches(objective, args.corpus, tok, normalize=normalize, batch_size=args.batch_size,
                                 seq_len=args.seq_len, seed=args.seed, rank=rank, world=world),
                         workers=args.workers, device=device)            # 子进程提前做好批次，与训练的一步重叠
    scorer = make_objective(args.objective, tok, config)      # 评估总用默认设置（MLM 遮 15%），不同掩码比例才可比
    valid = [{k: v.to(device) for k, v in b.items()}
             for b in eval_batches(scorer, tok, normalize, args.seq_len)] if rank == 0 else []
    precision, amp_dtype = precision_for(args.precision, device)
    loss = objective if amp_dtype is None else _Autocast(objective, device.type, amp_dtype)
    # fp16 的指数位少，小梯度会下溢成 0：先把损失放大再反向，更新前缩回（GradScaler 自动调倍数）
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    t0 = time.perf_counter()
    history = fit(wrapped, get_batch, loss, args.steps, optimizer=opt, scheduler=sched,
                  eval_fn=lambda m: scorer.metrics(m, valid), eval_every=args.eval_every or max(1, args.steps // 10),
                  accum=args.accum, desc=f"{args.model} 预训练", progress=not args.quiet,
                  state_path=out / "state.pt", scaler=scaler)
    seconds = time.perf_counter() - t0
    metrics = {}
    if rank == 0:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / "model.pt")
        tokens = history.last["step"] * args.batch_size * args.accum * args.seq_len   # 全部进程合计
        metrics = {"history": history.records, "final": {k: v for k, v in history.last.items() if k != "step"},
                   "steps": args.steps, "world_size": world, "train_seconds": round(history.last["seconds"], 1),
                   "tokens_per_second": round(tokens / history.last["seconds"], 1),
                   "wall_seconds": round(seconds, 1),
                   "tokens_per_step": args.batch_size * args.accum * args.seq_len,
                   "layout": {"device": device.type, "processes": world, "threads_per_process": torch.get_num_threads(),
                              "data_workers": args.workers, "precision": precision}}
        (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return metrics


def main(argv=None):
    try:
        metrics = run(argv)
    except ValueError as e:
        print(f"错误：{e}", file=sys.stderr)
        return 2
    if metrics:
        print(json.dumps(metrics["final"], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
