"""第 10 章的 ERNIE 检查点。

ernie_news：用 pretrain 命令做 ERNIE 1.0 的知识掩码预训练。模型、数据、步数、种子、学习率与调度与第 7 章的
bert_news 全同（BERT_ARGS 只换了模型名），只有掩码不同：前三分之一逐字遮（与 BERT 相同），
中间三分之一整词遮，最后三分之一整个人名、地名、机构名一起遮（见 lmcourse.objectives.KnowledgeMasking）。
"""
from lmcourse.recipes.bert import BERT_ARGS, masked_metrics
from lmcourse.recipes.common import history, pretrain

ERNIE_ARGS = ["ernie"] + BERT_ARGS[1:]


def ernie_news():
    """小 ERNIE（结构与小 BERT 相同）在人民日报 + 评论文本上做知识掩码预训练。"""
    from lmcourse import data
    from lmcourse.ckpt import vocab_hash
    from lmcourse.models.bert import BertConfig, BertForPreTraining

    state, config, metrics, command = pretrain("ernie_news", ERNIE_ARGS)
    model = BertForPreTraining(BertConfig(**config["model_config"]))
    model.load_state_dict(state)
    model.eval()
    valid, test = masked_metrics(model, "valid"), masked_metrics(model, "test")
    a = config["args"]
    meta = {"config": config["model_config"], "vocab_hash": vocab_hash(data.bert_tokenizer()), "seed": a["seed"],
            "data": "与 bert_news 相同：人民日报 1998-01 训练集 + 评论训练集的文本（数字换成 #NUM#），流式打包成 128 字的块；"
                    "词与实体由 jieba.posseg 在每块上切分；valid / test 为人民日报的留出划分，按原顺序打包、逐字的固定掩码（与 bert_news 同一口径）",
            "pretrain_command": command,
            "optimizer": f"AdamW（权重衰减 {a['weight_decay']}），学习率峰值 {a['lr']}，{a['warmup']} 升温后线性衰减，"
                         f"batch={a['batch_size']}，块长 {a['seq_len']}，掩码比例 {a['mask_prob']}，"
                         f"目标 {a['objective']}（逐字 → 整词 → 实体，各三分之一），steps={a['steps']}",
            "tokens_seen": a["steps"] * a["batch_size"] * a["seq_len"], "train_seconds": metrics["train_seconds"],
            "tokens_per_second": metrics["tokens_per_second"],
            "history": history(metrics, ["train_loss", "valid_ppl", "valid_acc"], 4),
            "metrics": {"valid_mlm_ppl": round(valid["mlm_ppl"], 2), "valid_mlm_acc": round(valid["mlm_acc"], 4),
                        "test_mlm_ppl": round(test["mlm_ppl"], 2), "test_mlm_acc": round(test["mlm_acc"], 4)}}
    return model, meta
