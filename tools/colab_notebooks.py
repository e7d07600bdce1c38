"""把各章（MyST 写的 .ipynb）转成 Colab 读得懂的普通 Jupyter Markdown，写到 _build/colab/chapters/。

Colab 的 Markdown 不认识 MyST，原样会露出 {cite}、:::{exercise} 之类的标记，答案也直接摊在题目下面。转换：
- 引用 {cite}`a,b` → “（作者, 年份；……）”，链接到网页版的参考文献页；
- 公式标签 $$ … $$ (label) → 公式里的 \\tag{章.序号}（与网页版的编号相同）；{eq}`label` → 链到网页版那条公式；
- {ref}`练习标签` → “练习 章.序号”，链到网页版；{doc}`页面` → 页面标题，链到网页版；
- :::{exercise} → 小标题“练习 章.序号”；:::{solution} → 折叠的 <details><summary>答案</summary>…</details>；
- ```{admonition} 标题 → 引用块（> **标题** …）；
- 开头的 Colab 徽章换成一行“网页版”链接；交互图单元存下的输出（部件视图）去掉，在 Colab 上运行它即可。
转完后检查：任何 Markdown 单元里都不许再有 MyST 标记，否则以 1 退出。

用法：python tools/colab_notebooks.py [--out _build/colab] [chapters/XX.ipynb ...]
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# 转换后不该再出现的 MyST 标记
MYST_RE = re.compile(r"\{[a-z:]+\}`|^\s*:::|^\s*```\s*\{|\$\$\s*\([\w\-]+\)|^\([\w\-]+\)=\s*$|^:(label|class):", re.M)


def site_url(root: Path = ROOT) -> str:
    """网页版地址（_config.yml 的 html.baseurl），以 / 结尾。"""
    cfg = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    return cfg["html"]["baseurl"].rstrip("/") + "/"


def chapter_paths(root: Path = ROOT) -> list[Path]:
    """_toc.yml 里“正文”的各章，按顺序（章号 = 序号 + 1）。"""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files = [c["file"] for part in toc["parts"] if part.get("numbered") for c in part["chapters"]]
    return [root / f"{f}.ipynb" for f in files]


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def bib_labels(root: Path = ROOT) -> dict[str, str]:
    """参考文献的键 → “作者, 年份”（一位作者写姓；两位写“甲 和 乙”；更多写“甲 等”）。"""
    from pybtex.database import parse_file

    labels = {}
    for key, entry in parse_file(str(root / "book" / "references.bib")).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        last = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in people]
        who = last[0] if len(last) == 1 else f"{last[0]} 和 {last[1]}" if len(last) == 2 else f"{last[0]} 等"
        labels[key] = f"{who}, {entry.fields.get('year', '')}"
    return labels


def label_map(paths, site: str) -> dict[str, tuple[str, str]]:
    """全书的公式与练习标签 → (显示的文字, 网页版链接)。编号与网页版相同：章号.本章第几个。"""
    labels = {}
    for n, path in enumerate(paths, start=1):
        page = f"{site}chapters/{path.stem}.html"
        text = "\n".join(_source(c) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                         if c["cell_type"] == "markdown")
        for k, lab in enumerate(re.findall(r"\$\$\s*\(([\w\-]+)\)", text), start=1):
            labels[lab] = (f"({n}.{k})", f"{page}#equation-{lab}")
        for k, lab in enumerate(re.findall(r":::\{exercise\}[^\n]*\n:label:\s*([\w\-]+)", text), start=1):
            labels[lab] = (f"练习 {n}.{k}", f"{page}#{lab}")
    return labels


def doc_title(docpath: Path) -> str:
    for line in docpath.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return docpath.stem


def convert_markdown(text: str, chapter: Path, labels, bib, site: str) -> str:
    refs = f"{site}book/references.html"

    def cite(m):
        keys = [k.strip() for k in m.group(1).split(",")]
        missing = [k for k in keys if k not in bib]
        if missing:
            raise KeyError(f"{chapter.name}：参考文献里没有 {missing}")
        return "（" + "；".join(f"[{bib[k]}]({refs})" for k in keys) + "）"

    def ref(m):
        lab = m.group(2)
        if lab not in labels:
            raise KeyError(f"{chapter.name}：找不到标签 {lab}")
        shown, link = labels[lab]
        return f"[{shown}]({link})"

    def doc(m):
        target = (chapter.parent / m.group(1)).resolve().relative_to(ROOT)
        return f"[{doc_title(ROOT / f'{target}.md')}]({site}{target}.html)"

    def equation(m):
        shown, _ = labels[m.group(2)]
        return f"$${m.group(1).rstrip()}\n\\tag{{{shown.strip('()')}}}\n$$"

    def exercise(m):
        shown, _ = labels[m.group(1)]
        return f'<a id="{m.group(1)}"></a>\n\n#### {shown}\n\n{m.group(2).strip()}\n'

    def solution(m):
        return f"<details><summary>答案</summary>\n\n{m.group(1).strip()}\n\n</details>\n"

    def admonition(m):
        body = "\n".join("> " + line if line.strip() else ">" for line in m.group(2).strip().splitlines())
        return f"> **{m.group(1).strip()}**\n>\n{body}\n"

    text = re.sub(r" ?\{cite(?::\w+)?\}`([^`]+)`", cite, text)
    text = re.sub(r"\$\$([\s\S]*?)\$\$\s*\(([\w\-]+)\)", equation, text)
    text = re.sub(r"\{(eq|ref|numref)\}`([^`]+)`", ref, text)
    text = re.sub(r"\{doc\}`([^`]+)`", doc, text)
    text = re.sub(r":::\{exercise\}[^\n]*\n:label:\s*([\w\-]+)\n([\s\S]*?)\n:::", exercise, text)
    text = re.sub(r":::\{solution\}[^\n]*\n(?::[a-z]+:[^\n]*\n)*([\s\S]*?)\n:::", solution, text)
    text = re.sub(r"```\{admonition\}([^\n]*)\n(?::[a-z]+:[^\n]*\n)*([\s\S]*?)\n```", admonition, text)
    return text


def convert(path: Path, labels, bib, site: str) -> dict:
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = copy.deepcopy(nb)
    cells = []
    for cell in out["cells"]:
        if cell.get("id") == "colab-badge":
            cell["source"] = f"网页版（带交互图和参考文献）：[{site}chapters/{path.stem}.html]({site}chapters/{path.stem}.html)"
        elif cell["cell_type"] == "markdown":
            cell["source"] = convert_markdown(_source(cell), path, labels, bib, site)
        elif cell["cell_type"] == "code":
            cell["outputs"] = [o for o in cell.get("outputs", []) if WIDGET_MIME not in o.get("data", {})]
        cells.append(cell)
    out["cells"] = cells
    out.get("metadata", {}).pop("widgets", None)
    return out


def myst_leftovers(nb: dict) -> list[str]:
    """转换后仍带 MyST 标记的 Markdown 单元（开头一段）。"""
    return [_source(c)[:80] for c in nb["cells"] if c["cell_type"] == "markdown" and MYST_RE.search(_source(c))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "_build" / "colab")
    ap.add_argument("chapters", nargs="*", type=Path)
    args = ap.parse_args(argv)
    site, bib = site_url(), bib_labels()
    every = chapter_paths()
    labels = label_map(every, site)
    paths = [p.resolve() for p in args.chapters] or every
    (args.out / "chapters").mkdir(parents=True, exist_ok=True)
    bad, cells = [], 0
    for path in paths:
        nb = convert(path, labels, bib, site)
        cells += sum(c["cell_type"] == "markdown" for c in nb["cells"])
        bad += [f"{path.name}：{s!r}" for s in myst_leftovers(nb)]
        (args.out / "chapters" / path.name).write_text(json.dumps(nb, ensure_ascii=False, indent=1) + "\n",
                                                       encoding="utf-8")
    print(f"Colab 版笔记本：{len(paths)} 章写到 {args.out / 'chapters'}，{cells} 个 Markdown 单元，"
          f"其中仍带 MyST 标记的 {len(bad)} 个")
    for b in bad:
        print("  " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
