"""像读者一样操作网页：Playwright for Python 驱动发行版的 Chromium（executable_path），
本地服务之外的每个请求都拦下并记为问题（页面不得向第三方发任何请求）。

逐页检查：
- 公式：MathJax（本站的 _static/mathjax）排好的公式个数 = 数学元素（span/div.math）个数，且没有 mjx-merror；
- 交互图（.lmc-explorer）：挂上了（data-lmc-ready）；逐个改动每个控件，图都跟着变；
  最后图上的数值等于这一章算出的数值：
  注意力：柱子 = 存下的权重（或 softmax(打分 / 温度)）那一行，和为 1；
  位置编码：两条曲线 = lmcourse.models.transformer.sinusoidal_encoding 的那两维；
  解码：柱子 = softmax(打分 / 温度) 的前几名，蓝灰 = lmcourse.models.gpt.filter_logits 留下与否；
  排列掩码：查询流的格子 = 1 − lmcourse.masking.permutation_masks 的 perm_mask。
- 页面脚本没有报错（pageerror）。

演习（--plant）：在构建结果的副本里埋一个坏处，这一页必须查出问题：
  broken-loader：lmc_loader.js 引用一个不存在的模块（交互图挂不上）；
  cdn：在页面里加一个 CDN 脚本（第三方请求）。
"""
from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from pathlib import Path

PLANTS = ("broken-loader", "cdn")

_CHANGE_JS = """(el, key) => {
  const c = el.querySelector(`[data-key="${key}"]`);
  if (c.tagName === "SELECT") {
    c.value = c.value === String(c.options.length - 1) ? "0" : String(c.options.length - 1);
    c.dispatchEvent(new Event("change", { bubbles: true }));
  } else {
    c.value = c.value === c.max ? c.min : c.max;
    c.dispatchEvent(new Event("input", { bubbles: true }));
  }
  return c.value;
}"""

_READ_JS = """(el) => {
  const root = el.querySelector(".lmc-explorer-root");
  const num = (nodes, a) => [...nodes].map((n) => Number(n.getAttribute(a)));
  return {
    dataset: { ...root.dataset },
    view: Object.fromEntries([...root.querySelectorAll("[data-key]")].filter((c) => !c.dataset.key.startsWith("__"))
      .map((c) => [c.dataset.key, Number(c.value)])),
    bars: num(root.querySelectorAll(".lmc-bar"), "data-v"),
    kept: num(root.querySelectorAll(".lmc-bar"), "data-kept"),
    curves: [...root.querySelectorAll(".lmc-curve")].map((c) => ({
      dim: Number(c.dataset.dim), values: c.dataset.values.split(",").map(Number) })),
    grids: [...root.querySelectorAll(".lmc-heatmap")].map((g) => num(g.querySelectorAll("rect[data-v]"), "data-v")),
  };
}"""


def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def expected_problems(kind: str, state: dict, seen: dict) -> list[str]:
    """图上读到的数值 seen 与这一章存下的数据 state（或 lmcourse 的公式）对不上时，返回问题列表。"""
    import torch

    data, view, ds = state["data"], seen["view"], seen["dataset"]
    if kind == "attention":
        ex = data["examples"][int(ds["example"])]
        L, H, Tq, Tk = ex["shape"]
        l, h, q = int(ds["layer"]), int(ds["head"]), int(ds["query"])
        at = ((l * H + h) * Tq + q) * Tk
        if "weights" in ex:
            row = ex["weights"][at:at + Tk]
        else:
            tau = view.get("temperature", 1.0)
            row = _softmax([-math.inf if v is None else v / tau for v in ex["scores"][at:at + Tk]])
        out = []
        if max(abs(a - b) for a, b in zip(row, seen["bars"])) > 1e-6 or len(row) != len(seen["bars"]):
            out.append(f"注意力柱子与这一章的权重不符（第 {l} 层第 {h} 头 query {q}）")
        if abs(sum(seen["bars"]) - 1) > 1e-3:
            out.append(f"注意力一行的和是 {sum(seen['bars']):.4f}，不是 1")
        return out
    if kind == "positional_encoding":
        from lmcourse.models.transformer import sinusoidal_encoding

        n, d = int(ds["maxLen"]), int(ds["dModel"])
        pe = sinusoidal_encoding(n, d, base=data["base"], dtype=torch.float64)
        out = []
        for c in seen["curves"]:
            err = (torch.tensor(c["values"], dtype=torch.float64) - pe[:, c["dim"]]).abs().max().item()
            if err > 1e-5:
                out.append(f"位置编码第 {c['dim']} 维的曲线与 sinusoidal_encoding 差 {err:.2e}")
        return out or ([] if len(seen["curves"]) == 2 else ["位置编码应画两条曲线"])
    if kind == "sampling":
        from lmcourse.models.gpt import filter_logits

        ex = data["prompts"][int(ds["prompt"])]
        tau, k, p = view["temperature"], int(view["top_k"]), view["top_p"]
        z = torch.tensor(ex["logits"], dtype=torch.float64) / tau
        probs = z.softmax(-1)
        top = probs.topk(data.get("show", 20)).indices
        kept = filter_logits(z, k or None, p if p < 1 else None).isfinite()
        out = []
        if (probs[top] - torch.tensor(seen["bars"], dtype=torch.float64)).abs().max().item() > 1e-6:
            out.append("解码图的概率与 softmax(打分 / 温度) 不符")
        if kept[top].int().tolist() != [int(v) for v in seen["kept"]]:
            out.append(f"解码图的蓝灰与 filter_logits 不符（温度 {tau}，top-k {k}，top-p {p}）")
        return out
    if kind == "permutation":
        T = len(data["tokens"])
        mask = data["masks"][int(ds["order"])][int(ds["numPredict"]) - 1]
        from lmcourse.masking import permutation_masks

        order, P = data["orders"][int(ds["order"])], int(ds["numPredict"])
        want = permutation_masks(T, torch.tensor(order), P)[0]
        target = [order.index(i) >= T - P for i in range(T)]             # 只预测顺序里的最后 P 个；其余行查询流不算（灰色 = -1）
        shown = [(1 - mask[i * T + j]) if target[i] else -1 for i in range(T) for j in range(T)]
        if [1 - v for v in mask] != (1 - want).int().flatten().tolist() or \
                [int(float(v)) for v in seen["grids"][1]] != shown:
            return ["排列掩码图的查询流与 permutation_masks 不符"]
        return []
    return [f"未知的交互图类型 {kind}"]


def check_page(page, url: str, local: str) -> tuple[dict, list[str]]:
    """打开一页，返回 (计数, 问题列表)。"""
    blocked, errors = [], []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(local)
               else (blocked.append(route.request.url), route.abort())[1])
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="load")
    page.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
    counts = page.evaluate("""() => {
      const math = [...document.querySelectorAll("span.math, div.math")];
      return { math: math.length, typeset: math.filter((m) => m.querySelector("mjx-container")).length,
               merror: document.querySelectorAll("mjx-merror").length,
               explorers: document.querySelectorAll(".lmc-explorer").length,
               ready: document.querySelectorAll(".lmc-explorer [data-lmc-ready]").length };
    }""")
    problems = []
    if counts["typeset"] != counts["math"]:
        problems.append(f"公式只排好了 {counts['typeset']} / {counts['math']} 个")
    if counts["merror"]:
        problems.append(f"有 {counts['merror']} 个公式排版出错（mjx-merror）")
    if counts["ready"] != counts["explorers"]:
        problems.append(f"交互图只挂上了 {counts['ready']} / {counts['explorers']} 个")
    counts["responding"] = 0
    for i in range(counts["ready"] if counts["ready"] == counts["explorers"] else 0):
        el = page.locator(".lmc-explorer").nth(i)
        state = json.loads(el.locator("script[type='application/json']").text_content())
        keys = el.evaluate("(el) => [...el.querySelectorAll('[data-key]')].map((c) => c.dataset.key)"
                           ".filter((k) => !k.startsWith('__'))")
        dead = []
        for key in keys:
            before = el.evaluate("(el) => el.querySelector('.lmc-body').innerHTML")
            el.evaluate(_CHANGE_JS, key)
            if el.evaluate("(el) => el.querySelector('.lmc-body').innerHTML") == before:
                dead.append(key)
        if dead:
            problems.append(f"第 {i + 1} 个交互图（{state['kind']}）改动控件 {dead} 后图没有变")
        wrong = expected_problems(state["kind"], state, el.evaluate(_READ_JS))
        problems += [f"第 {i + 1} 个交互图：{w}" for w in wrong]
        counts["responding"] += not dead and not wrong
    problems += [f"向第三方发了请求（已拦下）：{u}" for u in dict.fromkeys(blocked)]
    problems += [f"页面脚本出错：{e}" for e in errors]
    return counts, problems


def run(html_dir: Path, base_url: str, docs, chromium: str, screenshots: Path | None = None):
    """逐页检查 docs。返回 ({docname: 计数}, [(docname, 问题)])。"""
    from playwright.sync_api import sync_playwright

    results, problems = {}, []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        for doc in docs:
            page = browser.new_page(viewport={"width": 1200, "height": 900}, locale="zh-CN")
            try:
                counts, probs = check_page(page, base_url + f"{doc}.html", base_url)
            except Exception as e:  # noqa: BLE001 —— Playwright 的超时等都记成这一页的问题
                counts, probs = {}, [f"浏览器操作失败：{type(e).__name__}: {str(e)[:300]}"]
            results[doc] = counts
            problems += [(doc, m) for m in probs]
            page.close()
        if screenshots:
            _screenshots(browser, base_url, screenshots)
        browser.close()
    return results, problems


def _screenshots(browser, base_url: str, outdir: Path):
    """断网（只许本地）时的截图：第 5 章位置编码浏览器拖动前后、第 7 章注意力浏览器换一个头。"""
    outdir.mkdir(parents=True, exist_ok=True)
    for doc, name, key in (("chapters/05_transformer", "pe", "d_model"), ("chapters/07_bert", "bert_attention", "head")):
        page = browser.new_page(viewport={"width": 1200, "height": 900}, locale="zh-CN")
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base_url) else r.abort())
        page.goto(base_url + f"{doc}.html", wait_until="load")
        el = page.locator(".lmc-explorer").first
        if not el.count():
            page.close()
            continue
        el.scroll_into_view_if_needed()
        el.screenshot(path=str(outdir / f"live_{name}_before.png"))
        el.evaluate("""(el, key) => { const c = el.querySelector(`[data-key="${key}"]`);
          c.value = key === "d_model" ? "32" : String(Math.min(Number(c.max), 1));
          c.dispatchEvent(new Event("input", { bubbles: true })); }""", key)
        el.screenshot(path=str(outdir / f"live_{name}_after.png"))
        page.close()


def planted_copy(html_dir: Path, plant: str, doc: str) -> Path:
    """构建结果的副本，埋下一个坏处（见模块说明）。"""
    if plant not in PLANTS:
        raise ValueError(f"参数 plant 应为 {PLANTS} 之一，收到 {plant!r}")
    tmp = Path(tempfile.mkdtemp(prefix="lmcourse-plant-"))
    copy = tmp / "html"
    shutil.copytree(html_dir, copy)
    if plant == "broken-loader":
        f = copy / "_static" / "lmc_loader.js"
        f.write_text(f.read_text(encoding="utf-8").replace('"./explorers.js"', '"./explorers-missing.js"'), encoding="utf-8")
    else:
        f = copy / f"{doc}.html"
        text = f.read_text(encoding="utf-8")
        f.write_text(re.sub("</head>", '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script></head>',
                            text, count=1), encoding="utf-8")
    return copy
