"""正文里的每个数字都要有出处：由本章某个代码单元格打印出来、写在代码里，或者列在说明性数字的清单上。

用法：python tools/check_numbers.py [章节.ipynb ...]；有找不到出处的数字时逐个列出并以 1 退出。

- 正文：Markdown 单元格，去掉公式、行内代码、链接地址、引用和 HTML 之后的文字。
- 出处：本章代码单元格的输出（流输出、text/plain、text/markdown、text/html）和代码本身。
  正文写 0.917、输出是 0.9174 也算对上（按正文的小数位数四舍五入后相等）；正文写 48.2%，输出是 48.2% 或 0.482 都算。
- 章节号（第 7 章）和年份（2018 年）不算测量，直接跳过。
- 说明性数字（公式里的常数、论文里的规模……）列在 tools/expository_numbers.json 里，按章给出，每项附一句理由。
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIST = ROOT / "tools" / "expository_numbers.json"
STRIP = [r"```.*?```", r"\$\$.*?\$\$", r"\$[^$\n]*\$", r"`[^`]*`", r"\]\([^)]*\)", r"\{[a-z]+\}`[^`]*`",
         r"^:[a-z-]+:.*$", r"<[^>]+>", r"https?://\S+", r"\([a-z]+\d{4}[a-z]+\)"]
NUMBER = re.compile(r"(?<![\w.#])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:([%MKkB])(?!\w)| ?([万亿])|(?!\w|\.\d))")
SCALE = {"M": 1e6, "K": 1e3, "k": 1e3, "B": 1e9, "万": 1e4, "亿": 1e8}
SKIP = re.compile(r"第 \d+ [章节步层]|(?:19|20)\d\d(?= 年| 到| 至|–)")     # 章节号、年份不是测量
ANY = re.compile(r"(?<![\w.])-?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:[eE]([-+]?\d+))?(%?)")


def prose(text):
    for pat in STRIP:
        text = re.sub(pat, " ", text, flags=re.S | re.M)
    return text


def prose_numbers(text):
    """正文里的数字：[(原文, 数值, 小数位数, 单位)]，单位是“万”“M”之类的倍数（没有时为 1）。"""
    out = []
    text = SKIP.sub(" ", prose(text))
    for m in NUMBER.finditer(text):
        whole, frac, suffix, cjk = m.groups()
        value = float(whole.replace(",", "") + (frac or ""))
        out.append((m.group(0), value, len(frac) - 1 if frac else 0, SCALE.get(suffix or cjk, 1)))
    return out


def evidence_values(cells):
    """代码单元格的源码与输出里出现的全部数值。"""
    texts = []
    for c in cells:
        if c["cell_type"] != "code":
            continue
        texts.append("".join(c["source"]))
        for o in c.get("outputs", []):
            if "text" in o:
                texts.append("".join(o["text"]))
            for kind in ("text/plain", "text/markdown", "text/html"):
                if kind in o.get("data", {}):
                    texts.append("".join(o["data"][kind]))
    values = set()
    for t in texts:
        for m in ANY.finditer(t):
            whole, frac, exp, pct = m.groups()
            v = float(whole.replace(",", "") + (frac or "") + (f"e{exp}" if exp else ""))
            values.add(v)
            if not pct:
                values.add(v * 100)         # 0.482 也能对上正文的 48.2%
    return values


def matches(value, digits, scale, values):
    """按正文的小数位数四舍五入后相等；正文带“万”“M”时，输出可以写成完整的数，也可以带同样的单位。"""
    candidates = values | ({v / scale for v in values} if scale != 1 else set())
    return any(abs(round(v, digits) - value) < 10 ** -(digits + 3) for v in candidates)


def unexplained(nb, allowed):
    values = evidence_values(nb["cells"])
    missing = []
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "markdown":
            continue
        for raw, value, digits, scale in prose_numbers("".join(c["source"])):
            if raw not in allowed and raw.split(" ")[0] not in allowed and not matches(value, digits, scale, values):
                missing.append((i, raw))
    return missing


def main(argv):
    paths = [Path(a) for a in argv] or sorted((ROOT / "chapters").glob("*.ipynb"))
    lists = json.loads(LIST.read_text(encoding="utf-8")) if LIST.exists() else {}
    problems = []
    for p in paths:
        nb = json.loads(p.read_text(encoding="utf-8"))
        allowed = lists.get(p.stem, {})
        for i, raw in unexplained(nb, allowed):
            text = prose("".join(nb["cells"][i]["source"]))
            k = text.find(raw)
            problems.append(f"{p.name} 单元格 {i}：{raw}  …{text[max(0, k - 20):k + len(raw) + 12].strip()}…")
    print("\n".join(problems) or f"正文数字：{len(paths)} 章都有出处")
    if problems:
        print(f"\n{len(problems)} 个数字找不到出处：让代码单元格打印它，或者把它（附理由）列进 {LIST.relative_to(ROOT)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
