"""tools/search_dict.py：中文搜索的课程词典。浏览器里的搜索由 tools/browser_test.py 检查，这里只查词典本身。"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import search_dict  # noqa: E402


def test_dictionary_holds_the_terms_jieba_splits():
    words = search_dict.dictionary_text().split("\n")
    words = {w.split()[0] for w in words if w.strip()}
    # 这几个词 jieba 的通用词典会切开（困惑 + 度），读者却按整词搜
    for term in ("困惑度", "自注意力", "束搜索", "遗忘门", "掩码语言模型", "知识掩码"):
        assert term in words, term


def test_every_glossary_row_gives_search_terms():
    text = (ROOT / "book" / "notation.md").read_text(encoding="utf-8")
    rows = search_dict.glossary_rows(text)
    assert len(rows) >= 100
    assert ("perplexity (PPL)", "困惑度") in rows
    assert "困惑度" in search_dict.glossary_terms()


def test_chapter_terms_are_bold_with_english_in_parentheses(tmp_path):
    import json

    nb = {"cells": [{"cell_type": "markdown", "source": ["这叫**知识掩码**（knowledge masking），**不算**。"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    assert search_dict.chapter_terms(path) == ["知识掩码"]
