"""tools/colab_notebooks.py：各章转成 Colab 读得懂的普通 Markdown（make colab-notebooks）。"""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import colab_notebooks as cn  # noqa: E402


@pytest.fixture(scope="module")
def env():
    site = cn.site_url()
    return site, cn.bib_labels(), cn.label_map(cn.chapter_paths(), site)


def markdown(nb):
    return "\n".join(cn._source(c) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_every_chapter_converts_without_myst_left(env):
    site, bib, labels = env
    for path in cn.chapter_paths():
        nb = cn.convert(path, labels, bib, site)
        assert cn.myst_leftovers(nb) == [], path.name
        assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                       for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))


def test_exercises_citations_equations_and_references(env):
    site, bib, labels = env
    text = markdown(cn.convert(ROOT / "chapters" / "06_elmo.ipynb", labels, bib, site))
    assert "#### 练习 6.4" in text and text.count("<details><summary>答案</summary>") == text.count("#### 练习")
    assert f"（[Peters 等, 2018]({site}book/references.html)）" in text
    assert "\\tag{6.1}" in text and "(elmo-forward)" not in text
    assert f"[练习 6.4]({site}chapters/06_elmo.html#ch6-ex-snippet)" in text
    assert "> **与原论文的差别**" in text
    text7 = markdown(cn.convert(ROOT / "chapters" / "07_bert.ipynb", labels, bib, site))
    assert f"({site}book/appendix_cluster.html)" in text7


def test_leftover_detector_sees_each_kind_of_myst():
    for bad in ["见 {cite}`x`", ":::{note}\n文字\n:::", "$$\nx\n$$ (eq-x)", "```{admonition} 标题\n文字\n```",
                "(sec-a)=\n# 标题", ":label: ch1-ex"]:
        nb = {"cells": [{"cell_type": "markdown", "source": bad}]}
        assert cn.myst_leftovers(nb), bad
    assert cn.myst_leftovers({"cells": [{"cell_type": "markdown", "source": "普通的 `code` 和 $x$"}]}) == []


def test_command_writes_one_notebook_per_chapter(tmp_path):
    assert cn.main(["--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in (tmp_path / "chapters").glob("*.ipynb"))
    assert written == sorted(p.name for p in cn.chapter_paths())
    nb = json.loads((tmp_path / "chapters" / written[0]).read_text(encoding="utf-8"))
    assert nb["cells"][1]["source"].startswith("网页版")
