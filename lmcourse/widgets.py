"""交互图：注意力（第 3、5、7 章）、位置编码（第 5 章）、解码（第 8 章）、排列掩码（第 9 章）的浏览器。

每种图分两层：
- 纯函数按给定设置算出并画出一幅静态图，返回 matplotlib Figure（可单元测试，也是印刷版和不开 JavaScript 时看的图）；
- 浏览器 Explorer：Python 一次算好数据，前端是一个 ES 模块 static/explorers.js，拖控件时在浏览器里重画，不回调内核。
  在 Jupyter、Colab、VS Code 里由 anywidget 加载；在发布的网页上，由 book/_static/lmc_loader.js 用单元输出里
  存下的同一份数据加载同一个模块（没有内核，也不联网）。连着内核时，读者还能输入新句子，由内核算出新的例子。
"""
import json
import math
from functools import lru_cache
from pathlib import Path

import anywidget
import traitlets

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


def char_attention(text, kind="scaled_dot", temperature=1.0, num_heads=4, seed=0, scores=False):
    """一句话按字的自注意力权重，不经训练：query = key = 字向量（第 1 章 NNLM 检查点，64 维）。

    第 h 个头只用字向量的第 h 段（64 / num_heads 维），即在各自的子空间里比较相似度。
    general 的 W、additive 的 W_q、W_k、v 是固定种子的随机矩阵（未经训练）。
    返回 (tokens, 权重 (1, H, T, T))；scores=True 时返回 softmax 之前的打分（未除以温度）。
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
    if scores:
        return tokens, s.unsqueeze(0)                               # (1, H, T, T)
    return tokens, masked_softmax(s, temperature=temperature).unsqueeze(0).float()  # (1, H, T, T)


# ---------- 浏览器：一个前端模块，数据由 Python 算好 ----------
def _rounded(x, digits=4):
    """张量或数组展平成保留 digits 位小数的列表（-inf 记为 None），写进网页的数据不必更精确。"""
    import torch

    flat = torch.as_tensor(x).detach().double().flatten().tolist()
    return [None if v == float("-inf") else round(v, digits) for v in flat]


class Explorer(anywidget.AnyWidget):
    """交互图。kind 选前端的画法；data 是算好的数据；view 是控件的取值；
    连着内核时前端把读者输入的句子写进 request，由 compute(text) 算出新例子。"""

    _esm = Path(__file__).parent / "static" / "explorers.js"
    kind = traitlets.Unicode().tag(sync=True)
    data = traitlets.Dict().tag(sync=True)
    view = traitlets.Dict().tag(sync=True)
    live = traitlets.Bool(True).tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    request = traitlets.Dict().tag(sync=True)

    def __init__(self, kind, data, view, compute=None):
        super().__init__(kind=kind, data={**data, "can_compute": compute is not None}, view=view)
        self._compute = compute
        self.observe(self._on_request, names="request")

    def _on_request(self, change):
        request = change["new"]
        if self._compute is None or not (request.get("text", "").strip() or request.get("sample")):
            return
        try:
            self._compute(self, request)
            if not request.get("sample"):
                self.note = ""
        except (ValueError, TypeError) as err:
            self.note = f"算不了“{request.get('text', '')}”：{err}"

    def page_html(self):
        """发布网页用的 HTML：一个 div 和其中的 JSON 数据，由 lmc_loader.js 挂上同一个前端模块。"""
        state = json.dumps({"kind": self.kind, "data": self.data, "view": self.view},
                           ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
        return (f'<div class="lmc-explorer" data-kind="{self.kind}">'
                f'<script type="application/json">{state}</script>'
                '<p class="lmc-noscript">（这里是一幅交互图：网页上开着 JavaScript 就能用，在 Jupyter 里运行这个单元也能用。'
                '下面是它的静态版本。）</p></div>')

    def _repr_mimebundle_(self, **kwargs):
        data, meta = super()._repr_mimebundle_(**kwargs)
        return {**data, "text/html": self.page_html()}, meta     # Jupyter 显示部件；网页构建取 text/html

    def _ipython_display_(self, **kwargs):                       # ipywidgets 7（Colab）先找这个方法
        from IPython.display import display

        data, meta = self._repr_mimebundle_()
        display(data, metadata=meta, raw=True)


def attention_example(label, tokens, weights=None, key_tokens=None, scores=None):
    """注意力浏览器的一个例子：权重 (L, H, Tq, Tk)（或更少的维，见 as_weights4d）；
    也可以给打分 scores（同样的形状，-inf 为遮住），前端按温度滑块 softmax(scores / 温度)。"""
    check_type("label", label, str, "字符串")
    if (weights is None) == (scores is None):
        raise ValueError("参数 weights 与 scores 应恰好给出一个")
    w = as_weights4d(weights if scores is None else scores)
    L, H, Tq, Tk = w.shape
    tokens = _labels("tokens", tokens, Tq)
    key_tokens = _labels("key_tokens", tokens if key_tokens is None else key_tokens, Tk)
    return {"label": label, "tokens": tokens, "key_tokens": key_tokens, "shape": [L, H, Tq, Tk],
            "weights" if scores is None else "scores": _rounded(w)}


def attention_explorer(examples, query=0, layer=0, head=0, compute=None):
    """注意力浏览器：选例子、层、头和 query，看热力图和那一行的柱状图（scores 例子还有温度滑块）。

    examples 是 attention_example 的列表；query、layer、head 是第一个例子的初始视图（超出时夹到范围内）；
    compute(text) 返回新句子的例子列表（连着内核时读者可输入句子）。
    """
    check_type("examples", examples, (list, tuple), "attention_example 的列表")
    if not examples or not all(isinstance(e, dict) and "shape" in e for e in examples):
        raise ValueError("参数 examples 应为非空的 attention_example 列表")
    L, H, Tq, _ = examples[0]["shape"]
    query = min(check_int("query", query, minimum=0), Tq - 1)
    layer = min(check_int("layer", layer, minimum=0), L - 1)
    head = min(check_int("head", head, minimum=0), H - 1)

    def add(widget, request):
        new = compute(request["text"])
        widget.data = {**widget.data, "examples": widget.data["examples"] + list(new)}
        widget.view = {**widget.view, "example": len(widget.data["examples"]) - len(new)}

    return Explorer("attention", {"examples": list(examples)},
                    {"example": 0, "layer": layer, "head": head, "query": query, "temperature": 1.0},
                    compute=add if compute is not None else None)


def char_attention_examples(text, kinds=("scaled_dot", "dot", "general", "additive"), num_heads=4):
    """第 3 章：一句话在几种打分函数下的字向量自注意力打分，作为注意力浏览器的例子（温度在前端调）。"""
    check_type("kinds", kinds, (list, tuple), "打分函数名的列表")
    examples = []
    for kind in kinds:
        tokens, scores = char_attention(text, kind, num_heads=num_heads, scores=True)
        examples.append(attention_example(f"{text}｜{kind}", tokens, scores=scores))
    return examples


def attention_view(source, text=None, tokens=None, key_tokens=None, layer=0, head=0, query=0, **options):
    """按给定设置画出注意力视图（静态图），返回 Figure。

    source 是权重 (L, H, Tq, Tk)（此时给 tokens），或函数 source(text, **options) -> (tokens, 权重)。
    """
    import torch

    if callable(source) and not isinstance(source, torch.Tensor):
        check_type("text", text, str, "字符串")
        tokens, weights = source(text, **options)
    else:
        if tokens is None:
            raise ValueError("参数 source 是权重张量时必须给出 tokens")
        weights = source
    return attention_figure(weights, list(tokens), key_tokens, layer=layer, head=head, query=query)


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


def positional_encoding_explorer(max_len=64, d_model=128, dims=(4, 40), base=10000.0):
    """位置编码浏览器：滑块选最大长度、d_model 和两个维度，看热力图、曲线和内积矩阵。

    前端按 sinusoidal_encoding 的同一个公式在浏览器里算（浏览器测试逐点对照它）；d_model 变小时维度跟着夹紧。
    """
    check_int("max_len", max_len, minimum=8, maximum=512)
    check_int("d_model", d_model, minimum=8, maximum=512)
    if d_model % 8:
        raise ValueError(f"参数 d_model 应为 8 的倍数（滑块的步长），收到 {d_model}")
    dims = _pe_dims(dims, d_model)
    if len(dims) != 2:
        raise ValueError(f"参数 dims 应恰有两个维度，收到 {len(dims)} 个")
    check_number("base", base, minimum=1, strict=True)
    return Explorer("positional_encoding", {"base": float(base)},
                    {"max_len": max_len, "d_model": d_model, "dim1": dims[0], "dim2": dims[1]})


# ---------- 第 8 章：GPT 的解码（温度、top-k、top-p） ----------
def next_token_logits(model, tokenizer, prompt):
    """提示之后下一个字的打分 (V,)（未除以温度）。"""
    import torch

    check_type("prompt", prompt, str, "字符串")
    if not prompt:
        raise ValueError("参数 prompt 不能为空")
    ids = torch.tensor([[tokenizer.sep_id] + tokenizer.encode(prompt)])[:, -model.config.n_positions:]
    with torch.no_grad():
        return model.eval()(ids)[0, -1]


def next_token_distribution(model, tokenizer, prompt, temperature=1.0, top_k=None, top_p=None, show=20):
    """提示之后下一个字的分布：返回 [(字, 概率, 过滤后是否留下)]，按原始概率（除以温度后）从高到低取前 show 个。"""
    from lmcourse.models.gpt import filter_logits

    check_number("temperature", temperature, minimum=0, strict=True)
    check_int("show", show, minimum=1)
    logits = next_token_logits(model, tokenizer, prompt) / temperature                    # (V,)
    kept = filter_logits(logits, top_k, top_p).isfinite()                                   # (V,)
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


def sampling_explorer(model, tokenizer, prompts, show=20, length=30, temperature=1.0, top_k=None, top_p=None):
    """解码浏览器：选提示，调温度、top-k、top-p，看下一个字的分布里哪些被剪掉（与 filter_logits 同样地过滤）。

    每个提示之后整个字表的打分由模型一次算好；连着内核时还可以输入新的提示，或按当前设置续写 length 个字。
    temperature、top_k、top_p 是初始设置（滑块上 top-k 取 0、top-p 取 1 表示不过滤）。
    """
    import torch

    from lmcourse.models.gpt import _check_filters

    check_int("length", length, minimum=1, maximum=200)
    check_number("temperature", temperature, minimum=0.1, maximum=2)
    _check_filters(top_k, top_p)
    if top_k is not None and top_k > 50:
        raise ValueError(f"参数 top_k 应不超过 50（滑块的上限），收到 {top_k}")
    check_type("prompts", prompts, (list, tuple), "提示列表")
    if not prompts:
        raise ValueError("参数 prompts 不能为空")
    check_int("show", show, minimum=1, maximum=50)

    def example(prompt):
        return {"prompt": prompt, "logits": _rounded(next_token_logits(model, tokenizer, prompt), 3)}

    def add(widget, request):
        view = widget.view
        if request.get("sample"):                     # “续写”按钮：按当前设置抽样续写 length 个字
            prompt = widget.data["prompts"][view["prompt"]]["prompt"]
            ids = torch.tensor([[tokenizer.sep_id] + tokenizer.encode(prompt)])
            out = model.generate(ids, length, temperature=view["temperature"], top_k=view["top_k"] or None,
                                 top_p=view["top_p"] if view["top_p"] < 1 else None, truncate=True,
                                 generator=torch.Generator().manual_seed(int(request["seed"])))
            text = tokenizer.decode(out[0, ids.size(1):].tolist()).replace("[SEP]", "〈句末〉")
            widget.note = f"续写（种子 {request['seed']}）：{prompt}【{text}】"
            return
        widget.data = {**widget.data, "prompts": widget.data["prompts"] + [example(request["text"])]}
        widget.view = {**view, "prompt": len(widget.data["prompts"]) - 1}

    return Explorer("sampling", {"itos": list(tokenizer.itos), "show": show, "prompts": [example(p) for p in prompts]},
                    {"prompt": 0, "temperature": float(temperature), "top_k": top_k or 0,
                     "top_p": 1.0 if top_p is None else float(top_p)}, compute=add)


# ---------- 第 9 章：排列语言模型的两个掩码 ----------
def _orders(n):
    import itertools

    return list(itertools.permutations(range(n)))


def _stream_masks(tokens, order, num_predict=None, max_tokens=12):
    """两张图共用：核对 tokens、order，由 permutation_masks 得到 (tokens, 内容流看得见, 查询流看得见)，各为 (T, T) 的布尔张量。"""
    import torch

    from lmcourse.masking import permutation_masks

    check_type("tokens", tokens, (list, tuple, str), "token 列表")
    tokens = [str(t) for t in tokens]
    T = len(tokens)
    if not 1 <= T <= max_tokens:
        raise ValueError(f"参数 tokens 应有 1 到 {max_tokens} 个 token，收到 {T} 个")
    check_type("order", order, (list, tuple), "位置的列表")
    if sorted(order) != list(range(T)):
        raise ValueError(f"参数 order 应为 0..{T - 1} 的一个排列，收到 {list(order)}")
    P = T if num_predict is None else check_int("num_predict", num_predict, minimum=1, maximum=T)
    query, _ = permutation_masks(T, torch.tensor(order), P)
    seen_g = (1 - query).bool()                                          # 查询流：行看得见列
    return tokens, seen_g | torch.eye(T, dtype=torch.bool), seen_g      # 内容流还看得见自己


def permutation_figure(tokens, order, position=None, num_predict=None):
    """画分解顺序 order 给出的两张掩码：左为内容流、右为查询流，深色 = 行（查询）看得见列（键）的内容。

    tokens：每个位置的 token（位置不动，只有预测的先后被打乱）；position：高亮这一行；
    num_predict：只预测顺序里的最后几个（部分预测），其余行标“上文”。
    """
    from matplotlib.patches import Rectangle

    from lmcourse import viz

    tokens, seen_h, seen_g = _stream_masks(tokens, order, num_predict, max_tokens=12)
    T = len(tokens)
    P = T if num_predict is None else num_predict
    if position is not None:
        check_int("position", position, minimum=0, maximum=T - 1)
    rank = {p: k for k, p in enumerate(order)}
    rows = [f"{t}（第 {rank[i] + 1} 步）" if rank[i] >= T - P else f"{t}（上文）" for i, t in enumerate(tokens)]
    plt = viz.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.2))
    for ax, m, name in ((axes[0], seen_h, "内容流 h：还看得见自己"), (axes[1], seen_g, "查询流 g：看不见自己的内容")):
        ax.imshow(m.float().numpy(), cmap="Blues", vmin=0, vmax=1.25)
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


def two_stream_figure(tokens, order, position, layers=2):
    """双流自注意力的连线图（论文图 2 的样子），由 permutation_masks 的两张掩码画出。

    左：内容流 h，第 m 层的每个位置看上一层里内容流掩码允许的位置（连自己）；右：位置 position 的查询流 g，
    画在最右边单独的一列：第 m 层用上一层的 g 作查询（虚线）、从上一层的内容流 h（灰框）里取键和值，只取查询流掩码允许的位置
    （没有自己）。g 的第 0 层是所有位置共用的向量 w（代码里的 mask_emb）。高亮的是 position 收到的连线。
    """
    from matplotlib.patches import FancyBboxPatch

    from lmcourse import viz

    tokens, seen_h, seen_g = _stream_masks(tokens, order, max_tokens=8)
    T = len(tokens)
    check_int("position", position, minimum=0, maximum=T - 1)
    check_int("layers", layers, minimum=1, maximum=3)
    plt = viz.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 1.9 * layers + 2.2))
    # 节点的位置：内容流 h 第 m 层第 i 个在 (i, 1.6m)；查询流 g 画在右边单独的一列 x = T，第 m 层在 1.6m - 0.6（两行之间），
    # 第 0 层的 w 与第 0 层的 h 同一行。箭头由它连接的两个节点决定坐标，gid 记下这两个节点，测试据此核对。
    where = {("h", m, i): (i, 1.6 * m) for m in range(layers + 1) for i in range(T)}
    where.update({("g", m, position): (T, 1.6 * m - 0.6 if m else 0.0) for m in range(layers + 1)})

    def node(ax, key, text, color):
        x, y = where[key]
        ax.add_patch(FancyBboxPatch((x - 0.32, y - 0.2), 0.64, 0.4, boxstyle="round,pad=0.02", fc=color, ec="0.3",
                                    gid="node:%s:%d:%d" % key))
        ax.text(x, y, text, ha="center", va="center", fontsize=9)

    def edge(ax, src, dst, on, dashed=False):
        (x0, y0), (x1, y1) = where[src], where[dst]
        ax.annotate("", (x1, y1 - 0.21), (x0, y0 + 0.21), gid="edge:%s:%d:%d->%s:%d:%d" % (src + dst), arrowprops=dict(
            arrowstyle="->", color="C3" if on else "0.8", lw=1.8 if on else 0.8, linestyle="--" if dashed else "-"))

    rank = {p: k + 1 for k, p in enumerate(order)}
    for ax, stream in ((axes[0], "h"), (axes[1], "g")):
        for m in range(layers + (stream == "h")):                          # 右边只画查询流要借的 h（到倒数第二层）
            for i, t in enumerate(tokens):
                node(ax, ("h", m, i), f"$h^{{({m})}}$ {t}" if m else t, "#dbe9f6" if stream == "h" else "#eeeeee")
        for m in range(1, layers + 1):
            for j in range(T):
                if stream == "h":
                    for i in range(T):
                        if seen_h[i, j]:                                   # 内容流：上一层的 h 给键和值
                            edge(ax, ("h", m - 1, j), ("h", m, i), on=i == position)
                elif seen_g[position, j]:                                  # 查询流：键和值也来自上一层的 h
                    edge(ax, ("h", m - 1, j), ("g", m, position), on=True)
            if stream == "g":                                              # 查询来自上一层的 g（第 0 层是 w）
                edge(ax, ("g", m - 1, position), ("g", m, position), on=True, dashed=True)
        if stream == "g":
            for m in range(layers + 1):
                node(ax, ("g", m, position), f"$g^{{({m})}}$ {tokens[position]}" if m else "$w$", "#fde0c5")
        ax.set_xlim(-0.6, T + (stream == "g") - 0.4)
        ax.set_ylim(-0.5, 1.6 * layers + 0.5)
        ax.axis("off")
    axes[0].set_title(f"内容流 h：“{tokens[position]}”的 h 看得见自己和上文（红线）")
    axes[1].set_title(f"查询流 g：“{tokens[position]}”的 g 看不见自己的字；虚线 = 查询来自上一层的 g")
    arrow = " → ".join(f"{tokens[p]}" for p in order)
    fig.suptitle(f"分解顺序：{arrow}；“{tokens[position]}”是第 {rank[position]} 步。实线箭头：键和值，都来自上一层的内容流")
    fig.tight_layout()
    return fig


def permutation_explorer(tokens="我爱纽约", order=None, position=0):
    """排列掩码浏览器：用滑块逐个切换分解顺序（全部 T! 个）、选一个位置、设预测个数，看两个流各看得见什么。

    每个顺序、每个预测个数的掩码都由 masking.permutation_masks 算好，前端只负责画；order、position 是初始视图。
    """
    import torch

    from lmcourse.masking import permutation_masks

    tokens = [str(t) for t in tokens] if isinstance(tokens, (list, tuple, str)) else tokens
    check_type("tokens", tokens, list, "token 列表")
    T = len(tokens)
    if not 1 <= T <= 5:
        raise ValueError(f"参数 tokens 应有 1 到 5 个 token（顺序共 T! 个），收到 {T} 个")
    orders = _orders(T)
    order = None if order is None else [int(i) for i in order]          # 也接受 LongTensor
    start = 0 if order is None else orders.index(tuple(order)) if sorted(order) == list(range(T)) else -1
    if start < 0:
        raise ValueError(f"参数 order 应为 0..{T - 1} 的一个排列，收到 {list(order)}")
    check_int("position", position, minimum=0, maximum=T - 1)
    masks = [[permutation_masks(T, torch.tensor(o), P)[0].int().flatten().tolist() for P in range(1, T + 1)]
             for o in orders]
    return Explorer("permutation", {"tokens": tokens, "orders": [list(o) for o in orders], "masks": masks},
                    {"order": start, "position": position, "num_predict": T})
