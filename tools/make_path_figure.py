"""画出本书的学习路线图 book/_static/path.png（前言页用）。用法：python tools/make_path_figure.py"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from lmcourse.viz import setup_fonts  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "book" / "_static" / "path.png"
GROUPS = [
    ("统计与浅层神经模型", "#dbeafe", ["1 语言模型基础"]),
    ("循环网络与注意力", "#dcfce7", ["2 LSTM", "3 注意力机制", "4 Seq2Seq"]),
    ("Transformer 家族与预训练", "#fef3c7", ["5 Transformer", "6 ELMo", "7 BERT", "8 GPT", "9 XLNet", "10 ERNIE"]),
    ("回顾", "#f3e8ff", ["11 综述"]),
]


def main():
    setup_fonts()
    boxes = [(name, color, g) for g, color, names in GROUPS for name in names]
    fig, ax = plt.subplots(figsize=(11, 3.4))
    ax.set_xlim(0, 6.2)
    ax.set_ylim(-0.2, 2.3)
    ax.axis("off")
    # 两行排列：前 6 个在上行，后 5 个在下行（蛇形）
    pos = [(0.1 + i * 1.02, 1.35) for i in range(6)] + [(0.1 + (4 - i) * 1.02 + 1.02, 0.15) for i in range(5)]
    for (name, color, _group), (x, y) in zip(boxes, pos):
        ax.add_patch(FancyBboxPatch((x, y), 0.86, 0.62, boxstyle="round,pad=0.03", fc=color, ec="#555"))
        ax.text(x + 0.43, y + 0.31, name, ha="center", va="center", fontsize=11)
    for (x0, y0), (x1, y1) in zip(pos, pos[1:]):
        if y0 == y1:
            start, end = ((x0 + 0.9, y0 + 0.31), (x1 - 0.04, y1 + 0.31)) if x1 > x0 else ((x0 - 0.04, y0 + 0.31), (x1 + 0.9, y1 + 0.31))
        else:
            start, end = (x0 + 0.43, y0 - 0.04), (x1 + 0.43, y1 + 0.66)
        ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color="#333", lw=1.4))
    handles = [FancyBboxPatch((0, 0), 1, 1, fc=c, ec="#555") for _, c, _ in GROUPS]
    ax.legend(handles, [g for g, _, _ in GROUPS], loc="upper center", ncol=4, frameon=False,
              bbox_to_anchor=(0.5, 1.12), fontsize=10)
    fig.savefig(OUT, dpi=120, bbox_inches="tight")
    print(OUT, OUT.stat().st_size // 1000, "KB")


if __name__ == "__main__":
    main()
