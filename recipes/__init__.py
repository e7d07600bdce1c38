"""随包分发的检查点怎样训练出来：每个检查点一个配方函数，返回 (model, meta)。

预训练的检查点全部由 `python -m lmcourse.pretrain` 训练（同一个训练循环、同样的流式数据），
配方只负责给出命令（lmcourse.pretrain.Command 的常量，变体用 dataclasses.replace）、
在测试集上按各章的口径重算指标、写下说明。
配方、实验格子和缓存属于做实验的一方，只在仓库里（这个目录），不进 lmcourse 的安装包。
重建一个：python -m lmcourse.ckpt NAME（在仓库里运行）；全部重建：make checkpoints。
"""
from types import MappingProxyType

from recipes.lm import elmo, lstm_lm, nnlm
from recipes.bert import bert_news, bert_sentiment
from recipes.gpt import gpt_news, gpt_sentiment
from recipes.xlnet import xlnet_news, xlnet_sentiment
from recipes.ernie import ernie_news, ernie_tasks
from recipes.survey import frozen_sentiment
from lmcourse.ckpt import NAMES

RECIPES = MappingProxyType({
    "nnlm": nnlm, "lstm_lm": lstm_lm, "elmo": elmo, "bert_news": bert_news, "bert_sentiment": bert_sentiment,
    "gpt_news": gpt_news, "gpt_sentiment": gpt_sentiment, "xlnet_news": xlnet_news, "xlnet_sentiment": xlnet_sentiment,
    "ernie_news": ernie_news, "ernie_tasks": ernie_tasks, "frozen_sentiment": frozen_sentiment})
if tuple(RECIPES) != NAMES:                     # 检查点的名字只在 ckpt.CHECKPOINTS 里定义一次
    raise ImportError("recipes.RECIPES 与 lmcourse.ckpt.NAMES 不一致")
