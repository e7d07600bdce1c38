"""统一各章开头：第 2 个单元是 Colab 徽章，第 3 个单元是环境准备（每章完全相同）。

用法：python tools/chapter_header.py          # 改写 chapters/*.ipynb 的这两个单元
      python tools/chapter_header.py --check  # 只检查，不一致时退出码为 1
仓库地址和分支从 _config.yml 的 repository 读取（只在那里写一次）。
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def repository():
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    block = text[text.index("\nrepository:"):]
    url = re.search(r"^\s+url:\s*(\S+)", block, re.M).group(1).rstrip("/")
    branch = re.search(r"^\s+branch:\s*(\S+)", block, re.M).group(1)
    return url, branch


def badge_source(path):
    url, branch = repository()
    slug = url.split("github.com/")[1]
    link = f"https://colab.research.google.com/github/{slug}/blob/{branch}/chapters/{path.name}"
    # 徽章图片随书发布（book/_static），网页不向第三方请求图片；链接指向 colab 分支上的 Colab 版笔记本
    return f"[![在 Colab 中打开](../book/_static/colab-badge.svg)]({link})"


def setup_source():
    url, _ = repository()
    return (
        "# 环境准备：只在 Colab 上安装 lmcourse（自带中文字体和检查点，不重装 torch）；在本地什么也不做。\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "lmcourse @ git+{url}.git"], check=True)'
    )


def expected_cells(path):
    return [
        {"cell_type": "markdown", "id": "colab-badge", "metadata": {}, "source": badge_source(path)},
        {"cell_type": "code", "id": "colab-setup", "metadata": {"tags": ["remove-cell"]}, "source": setup_source()},
    ]


def main(check=False):
    bad = []
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        want = expected_cells(path)
        cells = nb["cells"]
        have = [("".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for c in cells[1:3]]
        if have == [w["source"] for w in want]:
            continue
        bad.append(path.name)
        if check:
            continue
        if len(cells) > 2 and "colab-badge" in have[0]:
            cells[1]["source"] = want[0]["source"]
            cells[2]["source"] = want[1]["source"]
        else:
            want[1].update(execution_count=None, outputs=[])
            cells[1:1] = want
        path.write_text(json.dumps(nb, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if bad:
        print(("不一致：" if check else "已更新：") + "、".join(bad))
    return 1 if check and bad else 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv))
