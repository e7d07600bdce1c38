"""交互部件：注意力矩阵浏览器（第 3 章起，Transformer、BERT 各章复用）。

每个部件分两层：
- 纯函数按给定设置算出并画出视图，返回 matplotlib Figure（可单元测试，也用来画发布页面上的静态图）；
- 薄薄的 ipywidgets 包装（interactive，即 interact 背后的对象）把下拉框、滑块接到纯函数上。
"""
import math
from functools import lru_cache

from lmcourse._check import check_choice, check_int, check_number, check_type


# ---------- 通用：画一个注意力矩阵 ----------
def as_weights4d(weights):
    """把 (Tq, Tk)、(H, Tq, Tk) 或 (L, H, Tq, Tk) 的权重统一成 (L, H, Tq, Tk) 的 float 张量。"""
    import numpy as np
    import torch

    if isinstance(weights, torch.Tensor):
        w = weights.detach().cpu().float()
    elif isinstance(weights, np.ndarray):
        w = torch.from_numpy(weights).float()
    else:
        raise TypeError(f"参数 weights 应为 torch.Tensor 或 numpy 数组，收到 {type(weights).__name__}")
    if w.dim() not in (2, 3, 4):
        raise ValueError(f"参数 weights 应为 (Tq, Tk)、(H, Tq, Tk) 或 (L, H, Tq, Tk)，收到形状 {tuple(w.shape)}")
    while w.dim() < 4:
        w = w.unsqueeze(0)
    return w


def _labels(name, labels, n):
    check_type(name, labels, (list, tuple, str), "token 列表")
    labels = [str(t) for t in labels]
    if len(labels) != n:
        raise ValueError(f"参数 {name} 的长度应为 {n}（与权重矩阵一致），收到 {len(labels)}")
    return labels


def attention_figure(weights, tokens, key_tokens=None, layer=0, head=0, query=0, title=None):
    """画第 layer 层、第 head 个头的注意力矩阵（行是 query，列是 key），右边是第 query 行的柱状图。

    weights 见 as_weights4d；tokens 是 query 一侧的 token，key_tokens 是 key 一侧的（默认同 tokens，即自注意力）。
    返回 Figure。
    """
    from lmcourse import viz

    w = as_weights4d(weights)
    L, H, Tq, Tk = w.shape
    tokens = _labels("tokens", tokens, Tq)
    key_tokens = _labels("key_tokens", tokens if key_tokens is None else key_tokens, Tk)
    check_int("layer", layer, minimum=0, maximum=L - 1)
    check_int("head", head, minimum=0, maximum=H - 1)
    check_int("query", query, minimum=0, maximum=Tq - 1)
    m, row = w[layer, head], w[layer, head, query]
    plt = viz.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(min(16, 4 + 0.5 * Tk), min(6.5, 1.8 + 0.3 * Tq)),
                                   gridspec_kw={"width_ratios": [1.25, 1]})
    where = f"第 {layer} 层 " if L > 1 else ""
    viz.heatmap(m, xlabels=key_tokens, ylabels=tokens, ax=ax1, vmin=0, xlabel="key（被看的 token）",
                ylabel="query（在看的 token）", title=title or f"{where}第 {head} 个头的注意力权重")
    ax1.add_patch(plt.Rectangle((-0.5, query - 0.5), Tk, 1, fill=False, edgecolor="red", linewidth=1.5))
    ax2.bar(range(Tk), row.numpy(), color="C1")
    ax2.set_xticks(range(Tk), key_tokens)
    ax2.set_ylim(0, max(1e-6, float(row.max())) * 1.15)
    ax2.set_ylabel("权重")
    ax2.set_title(f"第 {query} 个 query“{tokens[query]}”的权重（和为 {float(row.sum()):.2f}）")
    fig.tight_layout()
    return fig


# ---------- 第 3 章：用字向量算的一句话的自注意力 ----------
@lru_cache(maxsize=None)
def _char_vectors():
    """第 1 章 NNLM 检查点的字向量 (V, 64)（减去均值），以及它的字表。"""
    from lmcourse import data
    from lmcourse.models import nnlm

    model, _ = nnlm.from_checkpoint()
    emb = model.embed.weight.detach().double()
    return emb - emb.mean(0), data.lm_tokenizer()


def char_attention(text, kind="scaled_dot", temperature=1.0, num_heads=4, seed=0):
    """一句话按字的自注意力权重，不经训练：query = key = 字向量（第 1 章 NNLM 检查点，64 维）。

    第 h 个头只用字向量的第 h 段（64 / num_heads 维），即在各自的子空间里比较相似度。
    general 的 W、additive 的 W_q、W_k、v 是固定种子的随机矩阵（未经训练）。
    返回 (tokens, 权重 (1, H, T, T))。
    """
    import torch

    from lmcourse.models.attention import SCORE_KINDS, masked_softmax, score

    check_type("text", text, str, "字符串")
    if not text:
        raise ValueError("参数 text 不能为空字符串")
    check_choice("kind", kind, SCORE_KINDS)
    check_number("temperature", temperature, minimum=0, strict=True)
    emb, tok = _char_vectors()
    D = emb.size(1)
    check_int("num_heads", num_heads, minimum=1, maximum=D)
    if D % num_heads:
        raise ValueError(f"参数 num_heads={num_heads} 应整除字向量维数 {D}")
    d = D // num_heads
    tokens = tok.tokenize(text)
    x = emb[tok.encode(text)]                                       # (T, D)
    x = x.view(len(tokens), num_heads, d).transpose(0, 1)           # (H, T, d) 各头一段子空间
    g = torch.Generator().manual_seed(seed)
    params = {}
    if kind == "general":
        params["weight"] = torch.randn(d, d, generator=g, dtype=torch.float64) / d ** 0.5
    elif kind == "additive":
        params = {"w_q": torch.randn(d, d, generator=g, dtype=torch.float64) / d ** 0.5,
                  "w_k": torch.randn(d, d, generator=g, dtype=torch.float64) / d ** 0.5,
                  "v": torch.randn(d, generator=g, dtype=torch.float64) * 2}
    s = score(x, x, kind, **params)                                 # (H, T, T)
    return tokens, masked_softmax(s, temperature=temperature).unsqueeze(0).float()  # (1, H, T, T)


# ---------- 纯函数 + 交互包装 ----------
def _resolve(source, text, tokens, options):
    import torch

    if callable(source) and not isinstance(source, torch.Tensor):
        check_type("text", text, str, "字符串")
        tokens, weights = source(text, **options)
    else:
        if tokens is None:
            raise ValueError("参数 source 是权重张量时必须给出 tokens")
        weights = source
    return list(tokens), as_weights4d(weights)


def attention_view(source, text=None, tokens=None, key_tokens=None, layer=0, head=0, query=0, **options):
    """按给定设置算出并画出注意力视图，返回 Figure。

    source 是权重 (L, H, Tq, Tk)（此时给 tokens），或函数 source(text, **options) -> (tokens, 权重)。
    """
    tokens, weights = _resolve(source, text, tokens, options)
    return attention_figure(weights, tokens, key_tokens, layer=layer, head=head, query=query)


def attention_explorer(source, tokens=None, texts=None, key_tokens=None, controls=None, query=0):
    """注意力浏览器：选句子（source 为函数时）、层、头和 query，看权重热力图和那一行的柱状图。

    source 与 attention_view 相同；texts 是 source 为函数时可选的句子；controls 是传给 source 的其他选项，
    写成 ipywidgets.interact 的简写（如 {"kind": ["dot", "general"], "temperature": (0.1, 5.0, 0.1)}）。
    返回 ipywidgets.interactive（interact 背后的对象；在 notebook 里显示它）。
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    check_type("controls", controls if controls is not None else {}, dict, "字典")
    extra = {}
    for name, abbrev in (controls or {}).items():
        widget = W.interactive.widget_from_abbrev(abbrev)
        if widget is None:
            raise ValueError(f"参数 controls 中 {name} 的取值无法变成控件：{abbrev!r}")
        if not isinstance(abbrev, W.ValueWidget):  # 现成的控件保留它自己的说明文字
            widget.description = name
        extra[name] = widget
    if callable(source) and not hasattr(source, "shape"):
        check_type("texts", texts, (list, tuple), "句子列表")
        if not texts:
            raise ValueError("参数 texts 不能为空")
        text_w = W.Dropdown(options=list(texts), description="句子", layout=W.Layout(width="95%"))
        fixed = {"text": text_w, "tokens": W.fixed(None)}
        first_tokens, first = _resolve(source, texts[0], None, {k: w.value for k, w in extra.items()})
    else:
        text_w = None
        fixed = {"text": W.fixed(None), "tokens": W.fixed(tokens)}
        first_tokens, first = _resolve(source, None, tokens, {})
    L, H, Tq, _ = first.shape
    layer_w = W.IntSlider(0, 0, max(L - 1, 0), description="层", disabled=L == 1)
    head_w = W.IntSlider(0, 0, max(H - 1, 0), description="头", disabled=H == 1)
    query_w = W.IntSlider(min(check_int("query", query, minimum=0), Tq - 1), 0, Tq - 1, description="query 位置")

    if text_w is not None:
        def on_text(change):  # 换句子时，query 滑块的上限跟着句长变
            n = len(source(change["new"], **{k: w.value for k, w in extra.items()})[0])
            query_w.value = min(query_w.value, n - 1)
            query_w.max = n - 1

        text_w.observe(on_text, names="value")

    def show(text, tokens, layer, head, query, **options):
        fig = attention_view(source, text=text, tokens=tokens, key_tokens=key_tokens, layer=layer, head=head,
                             query=query, **options)
        plt.show()
        plt.close(fig)

    return W.interactive(show, **fixed, layer=layer_w, head=head_w, query=query_w, **extra)


# ---------- 第 5 章：正弦位置编码浏览器 ----------
def _pe_dims(dims, d_model):
    check_type("dims", dims, (list, tuple), "维度编号的列表")
    if not dims:
        raise ValueError("参数 dims 不能为空")
    return [check_int("dims 中的维度", d, minimum=0, maximum=d_model - 1) for d in dims]


def positional_encoding_figure(max_len=64, d_model=128, dims=(4, 5, 40, 41), base=10000.0):
    """画正弦位置编码的三幅图，返回 Figure：

    左：位置编码矩阵 (max_len, d_model) 的热力图，每行是一个位置的“纹理”，竖线标出 dims；
    中：dims 各维随位置变化的曲线（偶数维是 sin，奇数维是 cos，周期 2π·base^(2i/d_model)）；
    右：任意两个位置的位置编码的内积 PE(p)·PE(q)。
    """
    from lmcourse import viz
    from lmcourse.models.transformer import sinusoidal_encoding

    check_int("max_len", max_len, minimum=2)
    check_int("d_model", d_model, minimum=2)
    dims = _pe_dims(dims, d_model)
    check_number("base", base, minimum=1, strict=True)
    pe = sinusoidal_encoding(max_len, d_model, base=base)               # (L, d)
    plt = viz.pyplot()
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1.1, 1.2, 1]})
    viz.heatmap(pe, ax=ax1, cmap="RdBu_r", vmin=-1, vmax=1, xlabel="维度 i", ylabel="位置 pos",
                title=f"位置编码矩阵（{max_len} × {d_model}）")
    for k, d in enumerate(dims):
        ax1.axvline(d, color=f"C{k}", linewidth=2)
        period = 2 * math.pi * base ** ((d - d % 2) / d_model)
        kind = "cos" if d % 2 else "sin"
        ax2.plot(range(max_len), pe[:, d].numpy(), color=f"C{k}", label=f"第 {d} 维（{kind}，周期 {period:.1f}）")
    ax2.set_xlabel("位置 pos")
    ax2.set_ylabel("PE(pos, i)")
    ax2.set_ylim(-1.15, 1.6)
    ax2.set_title("所选维度随位置变化")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8, loc="upper right", ncol=2)
    viz.heatmap(pe @ pe.T, ax=ax3, xlabel="位置 q", ylabel="位置 p", title="位置编码的内积 PE(p)·PE(q)")
    fig.tight_layout()
    return fig


def positional_encoding_explorer(max_len=64, d_model=128, dims=(4, 40)):
    """位置编码浏览器：滑块选最大长度、d_model 和两个维度，看热力图、曲线和内积矩阵。

    返回 ipywidgets.interactive；d_model 变小时，维度滑块的上限跟着变。
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    check_int("max_len", max_len, minimum=8, maximum=512)
    check_int("d_model", d_model, minimum=8, maximum=512)
    if d_model % 8:
        raise ValueError(f"参数 d_model 应为 8 的倍数（滑块的步长），收到 {d_model}")
    dims = _pe_dims(dims, d_model)
    if len(dims) != 2:
        raise ValueError(f"参数 dims 应恰有两个维度，收到 {len(dims)} 个")
    len_w = W.IntSlider(max_len, 8, 512, 8, description="最大长度")
    model_w = W.IntSlider(d_model, 8, 512, 8, description="d_model")
    dim_ws = [W.IntSlider(d, 0, d_model - 1, description=f"维度 {k + 1}") for k, d in enumerate(dims)]

    def on_model(change):
        for w in dim_ws:
            w.value = min(w.value, change["new"] - 1)
            w.max = change["new"] - 1

    model_w.observe(on_model, names="value")

    def show(max_len, d_model, dim1, dim2):
        fig = positional_encoding_figure(max_len, d_model, (min(dim1, d_model - 1), min(dim2, d_model - 1)))
        plt.show()
        plt.close(fig)

    return W.interactive(show, max_len=len_w, d_model=model_w, dim1=dim_ws[0], dim2=dim_ws[1])


# ---------- 第 8 章：GPT 的解码（温度、top-k、top-p） ----------
def next_token_distribution(model, tokenizer, prompt, temperature=1.0, top_k=None, top_p=None, show=20):
    """提示之后下一个字的分布：返回 [(字, 概率, 过滤后是否留下)]，按原始概率（除以温度后）从高到低取前 show 个。"""
    import torch

    from lmcourse.models.gpt import filter_logits

    check_type("prompt", prompt, str, "字符串")
    if not prompt:
        raise ValueError("参数 prompt 不能为空")
    check_number("temperature", temperature, minimum=0, strict=True)
    check_int("show", show, minimum=1)
    ids = torch.tensor([[tokenizer.sep_id] + tokenizer.encode(prompt)])[:, -model.config.n_positions:]
    with torch.no_grad():
        logits = model.eval()(ids)[0, -1] / temperature                                  # (V,)
    kept = torch.isfinite(filter_logits(logits, top_k, top_p))                              # (V,)
    probs = logits.softmax(-1)
    top = probs.topk(min(show, len(probs)))
    return [(tokenizer.itos[i], p, bool(kept[i])) for p, i in zip(top.values.tolist(), top.indices.tolist())]


def sampling_figure(model, tokenizer, prompt, temperature=1.0, top_k=None, top_p=None, length=30, seed=0, show=20):
    """画下一个字的分布（柱状图：留下的着色、被 top-k / top-p 剪掉的灰色），并在标题下写出一次抽样续写的结果。"""
    import torch

    from lmcourse import viz

    check_int("length", length, minimum=0, maximum=200)
    check_int("seed", seed, minimum=0)
    rows = next_token_distribution(model, tokenizer, prompt, temperature, top_k, top_p, show)
    ids = torch.tensor([[tokenizer.sep_id] + tokenizer.encode(prompt)])
    out = model.generate(ids, length, temperature=temperature, top_k=top_k, top_p=top_p,
                         generator=torch.Generator().manual_seed(seed), truncate=True)
    text = tokenizer.decode(out[0, ids.size(1):].tolist()).replace("[SEP]", "〈句末〉")
    plt = viz.pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    labels = [t.replace("[SEP]", "〈句末〉") for t, _, _ in rows]
    ax.bar(range(len(rows)), [p for _, p, _ in rows], color=["C0" if k else "0.8" for _, _, k in rows])
    ax.set_xticks(range(len(rows)), labels)
    n_kept = sum(k for _, _, k in rows)
    ax.set(xlabel="下一个字（蓝色：过滤后留下；灰色：被剪掉；〈句末〉即 [SEP]）", ylabel="概率（除以温度之后）",
           title=f"“{prompt}”之后：温度 {temperature}，top-k {top_k or '不限'}，top-p {top_p or '不限'}"
                 f"（前 {len(rows)} 个里留下 {n_kept} 个）")
    fig.text(0.01, -0.02, f"续写（种子 {seed}）：{prompt}【{text}】", fontsize=10, ha="left", va="top", wrap=True)
    fig.tight_layout()
    return fig


def sampling_explorer(model, tokenizer, prompts, length=30):
    """解码浏览器：输入（或选）提示，调温度、top-k、top-p 和种子，看下一个字的分布哪些被剪掉、续写出什么。

    返回 ipywidgets.interactive；top-k 取 0、top-p 取 1 表示不过滤。
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    check_type("prompts", prompts, (list, tuple), "提示列表")
    if not prompts:
        raise ValueError("参数 prompts 不能为空")

    def show(prompt, temperature, top_k, top_p, seed):
        if not prompt.strip():
            print("请在“提示”框里输入几个字")
            return
        fig = sampling_figure(model, tokenizer, prompt, temperature, top_k or None, top_p if top_p < 1 else None,
                              length, seed)
        plt.show()
        plt.close(fig)

    box = W.Combobox(value=prompts[0], options=list(prompts), description="提示", continuous_update=False,
                     ensure_option=False)                 # 可以从例子里选，也可以自己输入
    return W.interactive(show, prompt=box,
                         temperature=W.FloatSlider(1.0, min=0.1, max=2.0, step=0.1, description="温度"),
                         top_k=W.IntSlider(0, 0, 50, description="top-k"),
                         top_p=W.FloatSlider(1.0, min=0.05, max=1.0, step=0.05, description="top-p"),
                         seed=W.IntSlider(0, 0, 20, description="种子"))


# ---------- 第 9 章：排列语言模型的两个掩码 ----------
def _orders(n):
    import itertools

    return list(itertools.permutations(range(n)))


def permutation_figure(tokens, order, position=None, num_predict=None):
    """画分解顺序 order 给出的两张掩码：左为内容流、右为查询流，深色 = 行（查询）看得见列（键）的内容。

    tokens：每个位置的 token（位置不动，只有预测的先后被打乱）；position：高亮这一行；
    num_predict：只预测顺序里的最后几个（部分预测），其余行标“上文”。
    """
    import torch
    from matplotlib.patches import Rectangle

    from lmcourse import viz
    from lmcourse.masking import permutation_masks

    check_type("tokens", tokens, (list, tuple, str), "token 列表")
    tokens = [str(t) for t in tokens]
    T = len(tokens)
    if not 1 <= T <= 12:
        raise ValueError(f"参数 tokens 应有 1 到 12 个 token，收到 {T} 个")
    check_type("order", order, (list, tuple), "位置的列表")
    if sorted(order) != list(range(T)):
        raise ValueError(f"参数 order 应为 0..{T - 1} 的一个排列，收到 {list(order)}")
    P = T if num_predict is None else check_int("num_predict", num_predict, minimum=1, maximum=T)
    if position is not None:
        check_int("position", position, minimum=0, maximum=T - 1)
    query, _ = permutation_masks(T, torch.tensor(order), P)
    seen_g = 1 - query                                                   # 查询流：1 = 看得见
    seen_h = seen_g.clone()
    seen_h.fill_diagonal_(1)                                             # 内容流还看得见自己
    rank = {p: k for k, p in enumerate(order)}
    rows = [f"{t}（第 {rank[i] + 1} 步）" if rank[i] >= T - P else f"{t}（上文）" for i, t in enumerate(tokens)]
    plt = viz.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.2))
    for ax, m, name in ((axes[0], seen_h, "内容流 h：还看得见自己"), (axes[1], seen_g, "查询流 g：看不见自己的内容")):
        ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1.25)
        ax.set_xticks(range(T), tokens)
        ax.set_yticks(range(T), rows)
        ax.set(xlabel="键（被看的位置）", title=name)
        if position is not None:
            ax.add_patch(Rectangle((-0.5, position - 0.5), T, 1, fill=False, edgecolor="C3", linewidth=2.5))
    axes[0].set_ylabel("查询（行）：位置上的字与它在顺序里的步数")
    arrow = " → ".join(tokens[p] for p in order)
    head = f"分解顺序：{arrow}" + (f"（只预测最后 {P} 个）" if P < T else "")
    if position is not None:
        can = [tokens[j] for j in range(T) if seen_g[position, j]]
        head += f"\n预测“{tokens[position]}”时能用的上文：{'、'.join(can) if can else '无（整行被挡住：代码里会均匀地看所有位置，连自己也看得见）'}"
    fig.suptitle(head)
    fig.tight_layout()
    return fig


def permutation_explorer(tokens="我爱纽约"):
    """排列掩码浏览器：用滑块逐个切换分解顺序（全部 T! 个）、选一个位置、设预测个数，看两个流各看得见什么。"""
    import ipywidgets as W
    import matplotlib.pyplot as plt

    tokens = [str(t) for t in tokens] if isinstance(tokens, (list, tuple, str)) else tokens
    check_type("tokens", tokens, list, "token 列表")
    if not 1 <= len(tokens) <= 6:
        raise ValueError(f"参数 tokens 应有 1 到 6 个 token（顺序共 T! 个），收到 {len(tokens)} 个")
    orders = _orders(len(tokens))

    def show(order_index, position, num_predict):
        fig = permutation_figure(tokens, list(orders[order_index]), position, num_predict)
        plt.show()
        plt.close(fig)

    T = len(tokens)
    return W.interactive(show, order_index=W.IntSlider(0, 0, len(orders) - 1, description="顺序编号"),
                         position=W.IntSlider(0, 0, T - 1, description="位置"),
                         num_predict=W.IntSlider(T, 1, T, description="预测个数"))
