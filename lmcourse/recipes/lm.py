"""第 1、2、6 章的语言模型检查点：NNLM、LSTM 语言模型、ELMo 的双向语言模型。

三者都在人民日报训练集上用 pretrain 命令训练；测试困惑度按各章的口径在 lmcourse.data.lm_stream 上重算。
"""
from lmcourse.recipes.common import history, pretrain

DATA = "人民日报 1998-01：lmcourse.pretrain 的流式数据（train 划分，打包成定长块）训练；" \
       "valid / test 用 lmcourse.data.lm_stream 的整条序列报告困惑度"

NNLM_ARGS = ["nnlm", "--preset", "small", "--corpus", "news", "--steps", "6000", "--batch-size", "16",
             "--seq-len", "64", "--lr", "3e-3", "--schedule", "cosine", "--warmup", "0.02", "--weight-decay", "0",
             "--dropout", "0", "--seed", "0", "--eval-every", "500", "--threads", "1"]
LSTM_ARGS = ["lstm", "--preset", "small", "--corpus", "news", "--steps", "5000", "--batch-size", "32",
             "--seq-len", "64", "--lr", "3e-3", "--schedule", "cosine", "--warmup", "0.05", "--weight-decay", "0",
             "--dropout", "0.2", "--seed", "0", "--eval-every", "500", "--threads", "1"]
ELMO_ARGS = ["elmo", "--preset", "small", "--corpus", "news", "--steps", "3000", "--batch-size", "32",
             "--seq-len", "64", "--lr", "3e-3", "--schedule", "cosine", "--warmup", "0.05", "--weight-decay", "0",
             "--dropout", "0.1", "--seed", "0", "--eval-every", "500", "--threads", "1"]


def _meta(config, metrics, command, tokens_seen, extra):
    from lmcourse import data
    from lmcourse.ckpt import vocab_hash

    a = config["args"]
    return {"config": config["model_config"], "vocab_hash": vocab_hash(data.lm_tokenizer()), "seed": a["seed"],
            "data": DATA, "pretrain_command": command,
            "optimizer": f"AdamW（权重衰减 {a['weight_decay']}），学习率峰值 {a['lr']}，{a['warmup']} 升温后 {a['schedule']} 衰减，"
                         f"batch={a['batch_size']}，块长 {a['seq_len']}，dropout={a['dropout']}，steps={a['steps']}",
            "tokens_seen": tokens_seen, "train_seconds": metrics["train_seconds"],
            "tokens_per_second": metrics["tokens_per_second"], **extra}


def nnlm():
    """NNLM（第 1 章）：看前 4 个字，6000 步 × 16 块 × 64 个预测 ≈ 6.1M 个预测。"""
    import math

    import torch

    from lmcourse import data
    from lmcourse.models.nnlm import NNLM, NNLMConfig, lm_eval_batches, lm_sum_loss
    from lmcourse.train import evaluate

    state, config, metrics, command = pretrain("nnlm", NNLM_ARGS)
    model = NNLM(NNLMConfig(**config["model_config"]))
    model.load_state_dict(state)
    ppl = {s: math.exp(evaluate(model, lm_eval_batches(data.lm_stream(s), model.config.context), lm_sum_loss))
           for s in ("valid", "test")}
    a = config["args"]
    meta = _meta(config, metrics, command, a["steps"] * a["batch_size"] * a["seq_len"],
                 {"history": history(metrics, ["valid_ppl"]),
                  "metrics": {"valid_ppl": round(ppl["valid"], 2), "test_ppl": round(ppl["test"], 2)}})
    return model.eval(), meta


def lstm_lm():
    """LSTM 语言模型（第 2 章）：5000 步 × 32 块 × 64 字 ≈ 10.2M 个字，dropout 0.2。"""
    from lmcourse import data
    from lmcourse.models.rnn import CharRNNLM, RNNLMConfig, perplexity

    state, config, metrics, command = pretrain("lstm_lm", LSTM_ARGS)
    cfg = dict(config["model_config"], cutoffs=tuple(config["model_config"]["cutoffs"]))
    model = CharRNNLM(RNNLMConfig(**cfg))
    model.load_state_dict(state)
    a = config["args"]
    meta = _meta(config, metrics, command, a["steps"] * a["batch_size"] * a["seq_len"],
                 {"history": history(metrics, ["valid_ppl"]),
                  "metrics": {"valid_ppl": round(perplexity(model, data.lm_stream("valid")), 2),
                              "test_ppl": round(perplexity(model, data.lm_stream("test")), 2)}})
    return model.eval(), meta


def elmo():
    """ELMo 的双向语言模型（第 6 章）：3000 步 × 32 块 × 64 字，两个方向的损失相加。"""
    from lmcourse import data
    from lmcourse.models.elmo import BiLM, ELMoConfig, perplexities

    state, config, metrics, command = pretrain("elmo", ELMO_ARGS)
    cfg = dict(config["model_config"], cutoffs=tuple(config["model_config"]["cutoffs"]))
    model = BiLM(ELMoConfig(**cfg))
    model.load_state_dict(state)
    vf, vb = perplexities(model, data.lm_stream("valid"))
    tf, tb = perplexities(model, data.lm_stream("test"))
    a = config["args"]
    meta = _meta(config, metrics, command, a["steps"] * a["batch_size"] * a["seq_len"],
                 {"history": history(metrics, ["valid_ppl_forward", "valid_ppl_backward"]),
                  "metrics": {"valid_ppl_forward": round(vf, 2), "valid_ppl_backward": round(vb, 2),
                              "test_ppl_forward": round(tf, 2), "test_ppl_backward": round(tb, 2)}})
    return model.eval(), meta
