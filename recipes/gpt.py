"""第 8 章的 GPT 检查点。

gpt_news：用 pretrain 命令在人民日报训练集上做从左到右的语言模型（前归一化的小 GPT，与第 7 章的小 BERT 同宽同深），
块长 256、每步 8 块，与第 2 章 lstm_lm 的数据、块长、批大小相同，便于按计算量比较。
gpt_sentiment：在 gpt_news 上按 GPT-1 的做法微调评论情感分类，带与不带辅助语言模型损失各 3 个种子，
存下 λ = 0.5、种子 0 的分类器权重（第 8 章载入它重算测试集 AUC），其余各次只记录验证 / 测试 AUC。
"""
import time
from dataclasses import dataclass, replace

from lmcourse._check import check_type
from lmcourse.metrics import flops_per_token
from lmcourse.pretrain import Command
from recipes.common import FineTuneGrid, history, pretrain

GPT = Command("gpt", preset="small", corpus="news", steps=3000, batch_size=8, seq_len=256, lr=2e-3, schedule="cosine",
              warmup=0.05, weight_decay=0.01, dropout=0.1, seed=0, eval_every=250, threads=1)
# 规模对比：宽一倍（C = 256）的 GPT，其余参数相同，步数减半（每个字的运算量约是小 GPT 的 3 倍）
WIDE = replace(GPT, preset="medium", steps=1500)


def gpt_news():
    """小 GPT（4 层、C=128、4 头、前归一化）在人民日报训练集上做从左到右的语言模型。"""
    from lmcourse import data
    from lmcourse.ckpt import vocab_hash
    from lmcourse.models import gpt as gpt_model          # 类名 GPT 与命令 GPT 重名

    state, config, metrics, text = pretrain("gpt_news", GPT)
    model = gpt_model.GPT(gpt_model.GPTConfig.from_dict(config["model_config"]))
    model.load_state_dict(state)
    model.eval()
    a = config["args"]
    scores = {f"{split}_ppl": round(gpt_model.perplexity(model, data.lm_stream(split), a["seq_len"]), 2)
              for split in ("valid", "test")}
    meta = {"config": config["model_config"], "vocab_hash": vocab_hash(data.lm_tokenizer()), "seed": a["seed"],
            "data": "人民日报 1998-01：lmcourse.pretrain 的流式数据（train 划分，打包成 256 字的块）训练；valid / test 用 "
                    "lmcourse.data.lm_stream 的整条序列，按 256 字的窗口、每次前移 128 字滑动，每个字至少有 128 字的上文",
            "pretrain_command": text,
            "optimizer": f"AdamW（权重衰减 {a['weight_decay']}），学习率峰值 {a['lr']}，{a['warmup']} 升温后 {a['schedule']} 衰减，"
                         f"batch={a['batch_size']}，块长 {a['seq_len']}，dropout={a['dropout']}，steps={a['steps']}",
            "tokens_seen": a["steps"] * a["batch_size"] * a["seq_len"], "train_seconds": metrics["train_seconds"],
            "tokens_per_second": metrics["tokens_per_second"], "layout": metrics.get("layout"),
            "flops_per_token": flops_per_token(config["model_config"], "gpt", a["seq_len"]),
            "history": history(metrics, ["train_loss", "valid_ppl"]), "metrics": scores,
            "wide": _wide()}
    return model, meta


def _wide():
    """宽一倍的 GPT：只记下训练曲线、测试困惑度和每个字的运算量，权重不随包分发。"""
    from lmcourse import data
    from lmcourse.models import gpt as gpt_model

    state, config, metrics, text = pretrain("gpt_news_wide", WIDE)
    model = gpt_model.GPT(gpt_model.GPTConfig.from_dict(config["model_config"]))
    model.load_state_dict(state)
    a = config["args"]
    return {"config": config["model_config"], "pretrain_command": text,
            "tokens_seen": a["steps"] * a["batch_size"] * a["seq_len"], "train_seconds": metrics["train_seconds"],
            "flops_per_token": flops_per_token(config["model_config"], "gpt", a["seq_len"]),
            "parameters": sum(p.numel() for p in model.parameters()),
            "history": history(metrics, ["train_loss", "valid_ppl"]),
            "test_ppl": round(gpt_model.perplexity(model.eval(), data.lm_stream("test"), a["seq_len"]), 2)}


# ---------- gpt_sentiment ----------
# GPT-1 式微调：[CLS] 评论 [SEP]，取 [SEP]（抽取符）处的输出分类。学习率、轮数、批大小、dropout 与第 7 章
# bert_sentiment 的预训练增益实验相同（微调 1 轮），只比较有无辅助语言模型损失，各 3 个种子。
@dataclass(frozen=True)
class GptSentimentGrid(FineTuneGrid):
    """gpt_sentiment 的格子：辅助语言模型损失的系数 aux（λ）× 种子；存下的是 aux 最后一项、第一个种子的模型。"""

    aux: tuple = (0.0, 0.5)

    def __post_init__(self):
        super().__post_init__()
        check_type("aux", self.aux, tuple, "系数的元组")


GPT_SENTIMENT = GptSentimentGrid()


def gpt_sentiment():
    """在 gpt_news 上微调评论情感分类：辅助语言模型损失 λ ∈ {0, 0.5} × 3 个种子，记录验证 / 测试 AUC。

    存下的权重是 λ = 0.5、种子 0 的那一个。
    """
    import statistics
    from dataclasses import asdict

    from lmcourse import ckpt, data, metrics, num_threads, set_seed
    from lmcourse.finetune import FineTuneConfig, build_gpt_classifier, fine_tune, predict, preprocess

    hp = GPT_SENTIMENT
    tok = data.lm_tokenizer()
    state, pre_meta = ckpt.load_state("gpt_news", tok)
    raw = data.load_sentiment()
    train, valid, test = (preprocess(raw[s], tok) for s in ("train", "valid", "test"))
    y_test = [d["label"] for d in test]
    runs, keep = [], None
    t0 = time.perf_counter()
    for aux in hp.aux:
        ft = FineTuneConfig(dropout=0.1, epochs=hp.epochs, aux_lm=aux)
        for seed in hp.seeds:
            set_seed(seed)
            num_threads(1)
            model = build_gpt_classifier(ft, state, pre_meta["config"])
            hist, _ = fine_tune(model, train, valid, ft, tok, seed, desc=f"GPT 微调 λ={aux}（种子 {seed}）")
            test_auc = metrics.auc(y_test, predict(model, test))
            runs.append({"aux_lm": aux, "seed": seed, "valid_auc": round(hist.last["valid_auc"], 4),
                         "test_auc": round(test_auc, 4), "seconds": round(hist.last["seconds"], 1)})
            print(runs[-1], flush=True)
            if aux == hp.aux[-1] and seed == hp.seeds[0]:
                keep, keep_config = model, ft
    summary = {}
    for aux in hp.aux:
        rows = [r for r in runs if r["aux_lm"] == aux]
        summary[str(aux)] = {k: {"mean": round(statistics.mean(r[k] for r in rows), 4),
                                 "sd": round(statistics.stdev(r[k] for r in rows), 4)} for k in ("valid_auc", "test_auc")}
    unk = sum(i == tok.unk_id for d in train for i in d["ids"]) / sum(len(d["ids"]) for d in train)
    meta = {"config": pre_meta["config"], "vocab_hash": pre_meta["vocab_hash"], "pretrained_from": "gpt_news",
            "data": "lmcourse.data.load_sentiment()（与第 7 章相同的划分）；[CLS] 评论 [SEP]，数字换成 #NUM#，"
                    "用人民日报的字表（评论里的生字记作 [UNK]）",
            "final_config": asdict(keep_config), "runs": runs, "summary": summary, "seeds": list(hp.seeds),
            "train_unk_rate": round(unk, 4), "train_seconds": round(time.perf_counter() - t0, 1),
            "metrics": {"test_auc": next(r["test_auc"] for r in runs
                                         if r["aux_lm"] == hp.aux[-1] and r["seed"] == hp.seeds[0])}}
    return keep, meta
