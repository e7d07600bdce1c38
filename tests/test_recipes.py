"""仓库里的配方（recipes/，不随包安装）：检查点 JSON 里记下的每条预训练命令，今天的配方都原样给得出来。"""
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import recipes
from lmcourse import ckpt, pretrain
from recipes import bert, ernie, gpt, lm, xlnet

ROOT = Path(__file__).resolve().parents[1]
PREFIX = ["python", "-m", "lmcourse.pretrain"]

# (检查点, JSON 里的位置) -> 配方里的命令
RECIPE_COMMANDS = {
    ("nnlm", "pretrain_command"): lm.NNLM,
    ("lstm_lm", "pretrain_command"): lm.LSTM,
    ("elmo", "pretrain_command"): lm.ELMO,
    ("bert_news", "pretrain_command"): bert.BERT,
    **{("bert_news", f"levers[{i}].command"): command for i, (_, _, command) in enumerate(bert.lever_runs())},
    ("bert_sentiment", "tapt.command"): bert.TAPT,
    ("gpt_news", "pretrain_command"): gpt.GPT,
    ("gpt_news", "wide.pretrain_command"): gpt.WIDE,
    ("xlnet_news", "pretrain_command"): xlnet.XLNET,
    ("ernie_news", "pretrain_command"): ernie.ERNIE,
}


def _stored_commands():
    """每个检查点 JSON 里所有以 python -m lmcourse.pretrain 开头的字符串：{(检查点, 位置): 命令}。"""
    found = {}

    def walk(name, value, where):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(name, v, f"{where}.{k}" if where else k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(name, v, f"{where}[{i}]")
        elif isinstance(value, str) and value.startswith(" ".join(PREFIX) + " "):
            found[(name, where)] = value

    for path in sorted(ckpt.DIR.glob("*.json")):
        walk(path.stem, json.loads(path.read_text(encoding="utf-8")), "")
    return found


def _parsed(argv):
    """pretrain 命令行解析出的全部设置（--out 不算）。"""
    args = vars(pretrain.parser().parse_args(argv + ["--out", "x"]))
    del args["out"]
    return args


def test_every_stored_command_has_a_recipe():
    stored = _stored_commands()
    assert len(stored) == 17 and set(stored) == set(RECIPE_COMMANDS)


@pytest.mark.parametrize("key", sorted(RECIPE_COMMANDS), ids="{0[0]}:{0[1]}".format)
def test_recipe_reproduces_the_stored_command(key):
    words = shlex.split(_stored_commands()[key])
    assert words[:3] == PREFIX
    assert _parsed(RECIPE_COMMANDS[key].argv()) == _parsed(words[3:])


def test_recipes_cover_every_checkpoint():
    assert tuple(recipes.RECIPES) == ckpt.NAMES


def test_ckpt_command_line_without_names_and_without_recipes():
    """python -m lmcourse.ckpt：不带名字时打印用法；找不到 recipes（只装了包）时说明配方在仓库里，退出码都是 2。"""
    usage = subprocess.run([sys.executable, "-m", "lmcourse.ckpt"], cwd=ROOT, capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stdout.startswith("用法：python -m lmcourse.ckpt NAME|all")
    code = "import runpy, sys; sys.modules['recipes'] = None; runpy.run_module('lmcourse.ckpt', run_name='__main__')"
    missing = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 2 and "recipes/" in missing.stderr and missing.stdout == ""
