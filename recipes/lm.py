"""第 1、2、6 章的语言模型检查点：NNLM、LSTM 语言模型、ELMo 的双向语言模型。

三者都在人民日报训练集上用 pretrain 命令训练；测试困惑度按各章的口径在 lmcourse.data.lm_stream 上重算。
"""
from dataclasses import replace

from lmcourse.metrics import perplexity
from lmcourse.pretrain import Command
from recipes.common import history, pretrain

DATA = "人民日报 1998-01：lmcourse.pretrain 的流式数据（train 划分，打包成定长块）训练；" \
       "valid / test 用 lmcourse.data.lm_stream 的整条序列报告困惑度"

NNLM = Command("nnlm", preset="small", corpus="news", steps=6000, batch_size=16, seq_len=64, lr=3e-3, schedule="cosine",
               warmup=0.02, weight_decay=0.0, dropout=0.0, seed=0, eval_every=500, threads=1)
LSTM = replace(NNLM, model="lstm", steps=5000, batch_size=8, seq_len=256, warmup=0.05, dropout=0.2)
ELMO = replace(NNLM, model="elmo", steps=3000, batch_size=32, seq_len=64, warmup=0.05, dropout=0.1)


def _meta(config, metrics, command, tokens_seen, extra):
    from lmcourse import data
    from lmcourse.ckpt import vocab_hash

    a = config["args"]
    return {"config": config["model_config"], "vocab_hash": vocab_hash(data.lm_tokenizer()), "seed": a["seed"],
            "data": DATA, "pretrain_command": command,
            "optimizer": f"AdamW（权重衰减 {a['weight_decay']}），学习率峰值 {a['lr']}，{a['warmup']} 升温后 {a['schedule']} 衰减，"
                         f"batch={a['batch_size']}，块长 {a['seq_len']}，dropout={a['dropout']}，steps={a['steps']}",
            "tokens_seen": tokens_seen, "train_seconds": metrics["train_seconds"],
            "tokens_per_second": metrics["tokens_per_second"], "layout": metrics.get("layout"), **extra}


def _recipe(name, command, load, perplexities):
    """三个配方的共同步骤：训练（或读回），建模型，按各章的口径重算 valid / test 困惑度，写说明。

    load(config) 由记录的模型配置建模型；perplexities(model, split) 返回 {指标名: 困惑度}。
    """
    state, config, metrics, text = pretrain(name, command)
    model = load(config["model_config"])
    model.load_state_dict(state)
    scores = {f"{split}_{k}": round(v, 2) for split in ("valid", "test") for k, v in perplexities(model, split).items()}
    a = config["args"]
    keys = [k for k in metrics["history"][-1] if k.startswith("valid_ppl")]
    meta = _meta(config, metrics, text, a["steps"] * a["batch_size"] * a["seq_len"],
                 {"history": history(metrics, keys), "metrics": scores})
    return model.eval(), meta


def nnlm():
    """NNLM（第 1 章）：看前 4 个字，6000 步 × 16 块 × 64 个预测 ≈ 6.1M 个预测。"""
    from lmcourse import data
    from lmcourse.models import nnlm as nnlm_model            # 模块名与本函数、类名 NNLM 与命令 NNLM 都重名
    from lmcourse.train import evaluate

    def ppl(model, split):
        batches = nnlm_model.lm_eval_batches(data.lm_stream(split), model.config.context)
        return {"ppl": perplexity(evaluate(model, batches, nnlm_model.lm_loss))}

    return _recipe("nnlm", NNLM, lambda c: nnlm_model.NNLM(nnlm_model.NNLMConfig.from_dict(c)), ppl)


def lstm_lm():
    """LSTM 语言模型（第 2 章）：5000 步 × 8 块 × 256 字 ≈ 10.2M 个字，dropout 0.2。块长 64 时测试困惑度只有 36.6：LSTM 要在训练时见到更长的上文。"""
    from lmcourse import data
    from lmcourse.models.rnn import CharRNNLM, RNNLMConfig, perplexity

    return _recipe("lstm_lm", LSTM, lambda c: CharRNNLM(RNNLMConfig.from_dict(c)),
                   lambda model, split: {"ppl": perplexity(model, data.lm_stream(split))})


def elmo():
    """ELMo 的双向语言模型（第 6 章）：3000 步 × 32 块 × 64 字，两个方向的损失相加。"""
    from lmcourse import data
    from lmcourse.models.elmo import BiLM, ELMoConfig, perplexities

    def ppl(model, split):
        forward, backward = perplexities(model, data.lm_stream(split))
        return {"ppl_forward": forward, "ppl_backward": backward}

    return _recipe("elmo", ELMO, lambda c: BiLM(ELMoConfig.from_dict(c)), ppl)
