"""作图：注册包内自带的中文字体，热力图和训练曲线都用中文标注。"""
from pathlib import Path

FONT_PATH = Path(__file__).parent / "fonts" / "NotoSansSC-Subset.ttf"
FONT_NAME = "Noto Sans SC"
_ready = False


def setup_fonts():
    """把包内的 Noto Sans SC 子集注册给 matplotlib 并设为默认字体；重复调用无副作用。"""
    global _ready
    import matplotlib as mpl
    from matplotlib import font_manager

    if not _ready:
        font_manager.fontManager.addfont(str(FONT_PATH))
        _ready = True
    mpl.rcParams["font.family"] = "sans-serif"
    mpl.rcParams["font.sans-serif"] = [FONT_NAME, "DejaVu Sans"]
    mpl.rcParams["axes.unicode_minus"] = False
    return FONT_NAME


def pyplot():
    """返回已设好中文字体的 matplotlib.pyplot。"""
    import matplotlib.pyplot as plt

    setup_fonts()
    return plt


def _check_labels(name, labels, n):
    if labels is None:
        return None
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"参数 {name} 的长度应为 {n}，收到 {len(labels)}")
    return [str(x) for x in labels]


def heatmap(matrix, xlabels=None, ylabels=None, title=None, xlabel=None, ylabel=None,
            ax=None, cmap="viridis", annotate=False, colorbar=True, vmin=None, vmax=None):
    """二维矩阵的热力图，刻度用中文 token 标注。返回 Axes。"""
    import numpy as np

    m = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"参数 matrix 应为二维矩阵，收到形状 {m.shape}")
    xl = _check_labels("xlabels", xlabels, m.shape[1])
    yl = _check_labels("ylabels", ylabels, m.shape[0])
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4, 0.45 * m.shape[1] + 2), max(3, 0.4 * m.shape[0] + 1.5)))
    im = ax.imshow(m, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    if xl is not None:
        ax.set_xticks(range(len(xl)), xl)
    if yl is not None:
        ax.set_yticks(range(len(yl)), yl)
    if annotate:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] < (m.max() + m.min()) / 2 else "black")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    for setter, value in ((ax.set_title, title), (ax.set_xlabel, xlabel), (ax.set_ylabel, ylabel)):
        if value:
            setter(value)
    return ax


def plot_curves(curves, xlabel="步数", ylabel="损失", title=None, ax=None, logy=False, hlines=None):
    """画若干条曲线。curves: {名称: (xs, ys)} 或 {名称: ys}；hlines: {名称: y} 画水平参考线。"""
    if not isinstance(curves, dict) or not curves:
        raise TypeError(f"参数 curves 应为非空字典 {{名称: (xs, ys)}}，收到 {type(curves).__name__}")
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    for name, value in curves.items():
        xs, ys = value if isinstance(value, tuple) else (range(1, len(value) + 1), value)
        xs, ys = list(xs), list(ys)
        if len(xs) != len(ys):
            raise ValueError(f"曲线 {name} 的横纵坐标长度不同：{len(xs)} 对 {len(ys)}")
        ax.plot(xs, ys, label=name, marker="o" if len(xs) < 15 else None)
    for i, (name, y) in enumerate((hlines or {}).items()):
        ax.axhline(y, linestyle="--", color=f"C{len(curves) + i}", label=name)
    if logy:  # 对数纵轴，刻度仍写成普通数字（200 而不是 2×10²）
        from matplotlib.ticker import FormatStrFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def show_table(rows, headers):
    """把若干行显示成 Markdown 表格（在网页和 Jupyter 里都渲染成表）。"""
    if not isinstance(rows, (list, tuple)) or not isinstance(headers, (list, tuple)):
        raise TypeError(f"参数 rows 和 headers 应为列表，收到 {type(rows).__name__} 和 {type(headers).__name__}")
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"参数 rows 的第 {i} 行有 {len(row)} 列，表头有 {len(headers)} 列")
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    text = "\n".join(lines)
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:  # 没有 IPython 时直接打印
        print(text)
