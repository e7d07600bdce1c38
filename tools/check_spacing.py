"""检查 Markdown 正文（章节和 book/ 页面）里中文与英文、数字之间是否有空格。

用法：python tools/check_spacing.py [文件 ...]；发现问题时列出并以 1 退出。
代码（`...`）、公式（$...$）、链接地址和代码块不检查。
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CJK = r"[\u4e00-\u9fff]"
LATIN = r"[A-Za-z0-9]"
BAD = re.compile(rf"{CJK}{LATIN}|{LATIN}{CJK}")
STRIP = [re.compile(p) for p in (r"```.*?```", r"`[^`]*`", r"\$\$.*?\$\$", r"\$[^$]*\$", r"\]\([^)]*\)",
                                 r"\{[a-z]+\}`[^`]*`", r"^:[a-z]+:.*$", r"<[^>]+>")]


def prose(text):
    for pat in STRIP:
        text = pat.sub(" ", text) if pat.flags & re.M else re.sub(pat.pattern, " ", text, flags=re.S | re.M)
    return text


def sources(paths):
    for p in paths:
        if p.suffix == ".ipynb":
            nb = json.loads(p.read_text(encoding="utf-8"))
            for i, c in enumerate(nb["cells"]):
                if c["cell_type"] == "markdown":
                    yield f"{p.name}#{i}", "".join(c["source"])
        else:
            yield p.name, p.read_text(encoding="utf-8")


def main(argv):
    paths = [Path(a) for a in argv] or sorted((ROOT / "chapters").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.md"))
    problems = []
    for where, text in sources(paths):
        for line in prose(text).splitlines():
            for m in BAD.finditer(line):
                problems.append(f"{where}: …{line[max(0, m.start() - 8):m.end() + 8]}…")
    print("\n".join(problems) or "中英文间距：没有问题")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
