// lmcourse 的交互图：一个 ES 模块，四种浏览器（注意力、位置编码、解码、排列掩码）。
// 在 Jupyter / Colab / VS Code 里由 anywidget 加载（model 连着内核）；在发布的网页上由
// book/_static/lmc_loader.js 用存在页面里的数据加载（model 是页面里的一个小对象，没有内核）。
// 用到的 model 接口只有 get、set、save_changes、on —— anywidget 的 model 与网页上的 model 都有。
// 数据（data）由 Python 一次算好；控件的取值在 view 里；live 为真（连着内核）时才显示“输入新句子”。

const SVG = "http://www.w3.org/2000/svg";

function h(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "style") e.style.cssText = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function s(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// viridis 的 9 个色标，线性插值；t ∈ [0, 1]
const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];
function viridis(t) {
  t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t)), f = t - i;
  return VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
}
// 蓝—白—红，v ∈ [-1, 1]
function redBlue(v) {
  const a = Math.min(1, Math.abs(v)), end = v < 0 ? [33, 102, 172] : [178, 24, 43];
  return end.map((c) => Math.round(255 + a * (c - 255)));
}
const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;

// 一个带说明文字的滑块或下拉框，接在 view 的 key 上；拖动时只重画图，不重建控件
function slider(model, label, key, value, min, max, step, extra = {}) {
  const out = h("span", { class: "lmc-value" }, String(value));
  const input = h("input", { type: "range", min, max, step, value, "data-key": key, "aria-label": label });
  input.addEventListener("input", () => {
    out.textContent = input.value;
    setView(model, { [key]: Number(input.value), ...(extra.patch ? extra.patch(Number(input.value)) : {}) });
  });
  return h("label", { class: "lmc-control" }, h("span", { class: "lmc-label" }, label), input, out);
}
function select(model, label, key, options, value) {
  const sel = h("select", { "data-key": key, "aria-label": label });
  options.forEach((text, i) => sel.append(h("option", { value: i }, text)));
  sel.value = String(value);
  sel.addEventListener("change", () => setView(model, { [key]: Number(sel.value) }));
  return h("label", { class: "lmc-control" }, h("span", { class: "lmc-label" }, label), sel);
}

function setView(model, patch) {
  model.set("view", { ...model.get("view"), ...patch });
  model.save_changes();
}

// 连着内核时：输入一句话，请内核算出新的例子（网页上没有内核，不显示）
function askKernel(model, label, placeholder) {
  if (!model.get("live") || !model.get("data").can_compute) return [];
  const input = h("input", { type: "text", placeholder, class: "lmc-text", "data-key": "__text" });
  const go = () => {
    if (!input.value.trim()) return;
    model.set("request", { text: input.value.trim(), n: Date.now() });
    model.save_changes();
  };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
  return [h("label", { class: "lmc-control lmc-wide" }, h("span", { class: "lmc-label" }, label), input,
    h("button", { onclick: go }, "计算"))];
}

// 连着内核时：按当前设置续写一段（每按一次换一个种子），结果由内核写进 note
function sampleButton(model) {
  if (!model.get("live")) return [];
  let seed = 0;
  const go = () => {
    model.set("request", { sample: true, seed: seed++, n: Date.now() });
    model.save_changes();
  };
  return [h("label", { class: "lmc-control" }, h("button", { onclick: go, "data-key": "__sample" }, "按当前设置续写"))];
}

// 热力图（SVG）：m 是 rows × cols 的数组，color(v) 给颜色；返回 <svg>
function heatmap(m, rowLabels, colLabels, color, opts = {}) {
  const R = m.length, C = m[0].length, cell = opts.cell || 22;
  const longest = Math.max(...rowLabels.map((t) => [...t].length));
  const left = 14 * longest + 10, top = opts.title ? 24 : 6;
  const rotate = colLabels.some((t) => [...t].length > 1);
  const bottom = rotate ? 12 * Math.max(...colLabels.map((t) => [...t].length)) + 16 : 22;
  const width = Math.max(left + C * cell + 8, opts.title ? 13 * [...opts.title].length : 0);
  const svg = s("svg", { width, height: top + R * cell + bottom, class: "lmc-heatmap" });
  if (opts.title) svg.append(s("text", { x: left, y: 16, class: "lmc-title" }, opts.title));
  m.forEach((row, i) => row.forEach((v, j) => {
    const r = s("rect", { x: left + j * cell, y: top + i * cell, width: cell, height: cell, fill: rgb(color(v)),
      "data-i": i, "data-j": j, "data-v": v });
    r.append(s("title", {}, `${rowLabels[i]} → ${colLabels[j]}：${(+v).toFixed(3)}`));
    svg.append(r);
  }));
  rowLabels.forEach((t, i) => svg.append(s("text", { x: left - 4, y: top + i * cell + cell * 0.68,
    "text-anchor": "end" }, t)));
  colLabels.forEach((t, j) => {
    const x = left + j * cell + cell / 2, y = top + R * cell + 14;
    svg.append(rotate ? s("text", { x, y, "text-anchor": "end", transform: `rotate(-50 ${x} ${y})` }, t)
      : s("text", { x, y, "text-anchor": "middle" }, t));
  });
  if (opts.highlight !== undefined) {
    svg.append(s("rect", { x: left, y: top + opts.highlight * cell, width: C * cell, height: cell, fill: "none",
      stroke: "red", "stroke-width": 2, class: "lmc-highlight" }));
  }
  return svg;
}

// 柱状图：values 与 labels 等长；kept[k] 为假的柱子画成灰色；返回 <svg>
function bars(values, labels, opts = {}) {
  const rotate = labels.some((t) => [...t].length > 1);
  const bottom = rotate ? 9 * Math.max(...labels.map((t) => [...t].length)) + 30 : 34;
  const W = Math.max(260, 24 * values.length + 50, opts.title ? 13 * [...opts.title].length : 0), H = 170, left = 40, top = 22;
  const bw = (W - left - 8) / values.length, vmax = Math.max(1e-6, ...values) * 1.15;
  const svg = s("svg", { width: W, height: H + top + bottom, class: "lmc-bars" });
  if (opts.title) svg.append(s("text", { x: 4, y: 15, class: "lmc-title" }, opts.title));
  svg.append(s("line", { x1: left, y1: top + H, x2: W - 4, y2: top + H, stroke: "#555" }));
  for (const f of [0, 0.5, 1]) {
    const y = top + H - f * H / 1.15;
    svg.append(s("text", { x: left - 4, y: y + 4, "text-anchor": "end", class: "lmc-tick" }, (f * vmax / 1.15).toFixed(2)));
  }
  values.forEach((v, k) => {
    const bh = (v / vmax) * H, kept = !opts.kept || opts.kept[k];
    const r = s("rect", { x: left + k * bw + 2, y: top + H - bh, width: Math.max(1, bw - 4), height: bh,
      fill: kept ? "#dd8452" : "#cccccc", class: "lmc-bar", "data-v": v, "data-kept": kept ? 1 : 0 });
    if (opts.kept && kept) r.setAttribute("fill", "#4c72b0");
    r.append(s("title", {}, `${labels[k]}：${v.toFixed(4)}`));
    svg.append(r);
    const x = left + k * bw + bw / 2, y = top + H + 14;
    svg.append(rotate ? s("text", { x, y, "text-anchor": "end", transform: `rotate(-50 ${x} ${y})` }, labels[k])
      : s("text", { x, y, "text-anchor": "middle" }, labels[k]));
  });
  if (opts.ylabel) svg.append(s("text", { x: left, y: top + H + bottom - 4, class: "lmc-tick" }, opts.ylabel));
  return svg;
}

// ---------- 注意力浏览器（第 3、5、7 章） ----------
// data.examples[k] = {label, tokens, key_tokens, shape: [L, H, Tq, Tk], weights 或 scores（展平）}
// 有 scores 时，权重 = softmax(scores / 温度)（scores 里的 null 是被遮住的 -∞）。
function attentionRow(ex, l, hd, q, temperature) {
  const [, H, Tq, Tk] = ex.shape, at = ((l * H + hd) * Tq + q) * Tk;
  if (ex.weights) return ex.weights.slice(at, at + Tk);
  const z = ex.scores.slice(at, at + Tk).map((v) => (v === null ? -Infinity : v / temperature));
  const m = Math.max(...z), e = z.map((v) => Math.exp(v - m)), sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

function renderAttention(model) {
  const data = model.get("data"), view = model.get("view");
  const ex = data.examples[Math.min(view.example || 0, data.examples.length - 1)];
  const [L, H, Tq] = ex.shape, keys = ex.key_tokens || ex.tokens;
  const l = Math.min(view.layer || 0, L - 1), hd = Math.min(view.head || 0, H - 1);
  const q = Math.min(view.query || 0, Tq - 1), tau = view.temperature || 1;
  const m = ex.tokens.map((_, i) => attentionRow(ex, l, hd, i, tau));
  const vmax = m.reduce((a, row) => Math.max(a, ...row), 0);
  const controls = h("div", { class: "lmc-controls" });
  if (data.examples.length > 1) {
    controls.append(select(model, "例子", "example", data.examples.map((e) => e.label), data.examples.indexOf(ex)));
  }
  if (L > 1) controls.append(slider(model, "层", "layer", l, 0, L - 1, 1));
  if (H > 1) controls.append(slider(model, "头", "head", hd, 0, H - 1, 1));
  controls.append(select(model, "query", "query", ex.tokens.map((t, i) => `${i}：${t}`), q));
  if (ex.scores) controls.append(slider(model, "温度", "temperature", tau, 0.1, 4, 0.1));
  controls.append(...askKernel(model, "新句子", "输入一句中文，回车"));
  const where = L > 1 ? `第 ${l} 层` : "";
  const row = m[q], sum = row.reduce((a, b) => a + b, 0);
  const figure = h("div", { class: "lmc-figure" },
    heatmap(m, ex.tokens, keys, (v) => viridis(v / vmax), { highlight: q,
      title: `${where}第 ${hd} 个头的注意力权重（行：query，列：key）` }),
    bars(row, keys, { title: `query“${ex.tokens[q]}”的权重（和为 ${sum.toFixed(2)}）`, ylabel: "权重" }));
  return { controls, body: [figure], dataset: { layer: l, head: hd, query: q, example: data.examples.indexOf(ex) } };
}

// ---------- 位置编码浏览器（第 5 章） ----------
// PE(pos, 2i) = sin(pos / base^(2i/d))，PE(pos, 2i+1) = cos(pos / base^(2i/d))
function pe(pos, dim, d, base) {
  const angle = pos / Math.pow(base, (dim - (dim % 2)) / d);
  return dim % 2 ? Math.cos(angle) : Math.sin(angle);
}

function canvasHeatmap(m, color, size, title, xlabel, ylabel, marks = []) {
  const R = m.length, C = m[0].length, c = h("canvas", { width: C, height: R, class: "lmc-canvas",
    style: `width:${size[0]}px;height:${size[1]}px;image-rendering:pixelated` });
  const ctx = c.getContext("2d"), img = ctx.createImageData(C, R);
  m.forEach((row, i) => row.forEach((v, j) => {
    const [r, g, b] = color(v), k = 4 * (i * C + j);
    img.data.set([r, g, b, 255], k);
  }));
  ctx.putImageData(img, 0, 0);
  // 竖线标出所选的列（颜色与曲线相同）
  const box = h("div", { style: `position:relative;width:${size[0]}px;height:${size[1]}px` }, c);
  marks.forEach(([col, stroke]) => box.append(h("div", { class: "lmc-mark", "data-col": col,
    style: `position:absolute;top:0;height:100%;width:2px;background:${stroke};left:${((col + 0.5) / C) * size[0] - 1}px` })));
  return h("div", { class: "lmc-panel" }, h("div", { class: "lmc-title" }, title), box,
    h("div", { class: "lmc-axis" }, `横轴：${xlabel}；纵轴：${ylabel}（从上往下增大）`));
}

function renderPE(model) {
  const data = model.get("data"), view = model.get("view"), base = data.base || 10000;
  const n = view.max_len, d = view.d_model, dims = [Math.min(view.dim1, d - 1), Math.min(view.dim2, d - 1)];
  const P = Array.from({ length: n }, (_, p) => Array.from({ length: d }, (_, i) => pe(p, i, d, base)));
  // PE(p)·PE(q) = Σ_i cos((p − q)·ω_i) 只取决于距离：先算每个距离的值，再铺成矩阵
  const byGap = Array.from({ length: n }, (_, g) => P[g].reduce((acc, x, k) => acc + x * P[0][k], 0));
  const dot = P.map((_, a) => P.map((_, b) => byGap[Math.abs(a - b)]));
  let dmax = -Infinity, dmin = Infinity;                 // 不用 Math.max(...)：512 × 512 个数会撑爆调用栈
  for (const row of dot) for (const v of row) { dmax = Math.max(dmax, v); dmin = Math.min(dmin, v); }
  const controls = h("div", { class: "lmc-controls" },
    slider(model, "最大长度", "max_len", n, 8, 512, 8),
    slider(model, "d_model", "d_model", d, 8, 512, 8, { patch: (v) => ({ dim1: Math.min(model.get("view").dim1, v - 1),
      dim2: Math.min(model.get("view").dim2, v - 1) }) }),
    slider(model, "维度 1", "dim1", dims[0], 0, d - 1, 1),
    slider(model, "维度 2", "dim2", dims[1], 0, d - 1, 1));
  // 所选两维随位置变化的曲线；每条折线的 data-values 存着画出的数值（浏览器测试拿它对照公式）
  const W = 380, Ht = 220, left = 36, top = 10;
  const curves = s("svg", { width: W, height: Ht + 60, class: "lmc-curves" });
  curves.append(s("line", { x1: left, y1: top + Ht / 2, x2: W - 4, y2: top + Ht / 2, stroke: "#bbb" }));
  for (const [v, label] of [[1, "1"], [0, "0"], [-1, "−1"]]) {
    curves.append(s("text", { x: left - 4, y: top + (1 - v) * Ht / 2 + 4, "text-anchor": "end", class: "lmc-tick" }, label));
  }
  dims.forEach((dim, k) => {
    const ys = Array.from({ length: n }, (_, p) => pe(p, dim, d, base));
    const pts = ys.map((y, p) => `${(left + (p / Math.max(1, n - 1)) * (W - left - 6)).toFixed(1)},${(top + (1 - y) * Ht / 2).toFixed(1)}`);
    curves.append(s("polyline", { points: pts.join(" "), fill: "none", stroke: k ? "#dd8452" : "#4c72b0",
      "stroke-width": 1.8, class: "lmc-curve", "data-dim": dim, "data-values": ys.map((y) => y.toFixed(6)).join(",") }));
    const period = 2 * Math.PI * Math.pow(base, (dim - (dim % 2)) / d);
    curves.append(s("text", { x: left + 4, y: top + Ht + 22 + 16 * k, fill: k ? "#dd8452" : "#4c72b0" },
      `第 ${dim} 维（${dim % 2 ? "cos" : "sin"}，周期 ${period.toFixed(1)}）`));
  });
  curves.append(s("text", { x: W - 4, y: top + Ht + 22, "text-anchor": "end", class: "lmc-tick" }, `位置 pos：0 … ${n - 1}`));
  const figure = h("div", { class: "lmc-figure" },
    canvasHeatmap(P, redBlue, [220, 220], `位置编码矩阵（${n} × ${d}）`, "维度 i", "位置 pos",
      [[dims[0], "#4c72b0"], [dims[1], "#dd8452"]]),
    h("div", { class: "lmc-panel" }, h("div", { class: "lmc-title" }, "所选维度随位置变化"), curves),
    canvasHeatmap(dot, (v) => viridis((v - dmin) / Math.max(1e-9, dmax - dmin)), [220, 220],
      "位置编码的内积 PE(p)·PE(q)", "位置 q", "位置 p"));
  return { controls, body: [figure], dataset: { maxLen: n, dModel: d, dim1: dims[0], dim2: dims[1] } };
}

// ---------- 解码浏览器（第 8 章） ----------
// data.prompts[k] = {prompt, logits（整个字表，去掉温度之前）}；与 lmcourse.models.gpt.filter_logits 同样地过滤
function keptMask(z, topK, topP) {
  let keep = z.map(() => true);
  if (topK > 0) {
    const kth = [...z].sort((a, b) => b - a)[Math.min(topK, z.length) - 1];
    keep = z.map((v) => v >= kth);
  }
  if (topP < 1) {
    const order = z.map((_, i) => i).filter((i) => keep[i]).sort((a, b) => z[b] - z[a]);
    const m = z[order[0]], e = order.map((i) => Math.exp(z[i] - m)), sum = e.reduce((a, b) => a + b, 0);
    let cum = 0;
    order.forEach((i, r) => {
      const p = e[r] / sum;
      if (cum >= topP) keep[i] = false;     // 排在它前面的已经够 top_p 了
      cum += p;
    });
  }
  return keep;
}

function renderSampling(model) {
  const data = model.get("data"), view = model.get("view"), itos = data.itos;
  const k = Math.min(view.prompt || 0, data.prompts.length - 1), ex = data.prompts[k];
  const tau = view.temperature, topK = view.top_k, topP = view.top_p;
  const z = ex.logits.map((v) => v / tau);
  const m = z.reduce((a, v) => Math.max(a, v), -Infinity), e = z.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b, 0), p = e.map((v) => v / sum), keep = keptMask(z, topK, topP);
  const top = p.map((_, i) => i).sort((a, b) => p[b] - p[a]).slice(0, data.show || 20);
  const nKept = keep.filter(Boolean).length, nTop = top.filter((i) => keep[i]).length;
  const controls = h("div", { class: "lmc-controls" },
    select(model, "提示", "prompt", data.prompts.map((x) => x.prompt), k),
    slider(model, "温度", "temperature", tau, 0.1, 2, 0.1),
    slider(model, "top-k（0 = 不限）", "top_k", topK, 0, 50, 1),
    slider(model, "top-p（1 = 不限）", "top_p", topP, 0.05, 1, 0.05),
    ...askKernel(model, "新提示", "输入几个字，回车"), ...sampleButton(model));
  const labels = top.map((i) => itos[i].replace("[SEP]", "〈句末〉"));
  const title = `“${ex.prompt}”之后：温度 ${tau}，top-k ${topK || "不限"}，top-p ${topP < 1 ? topP : "不限"}`;
  const figure = h("div", { class: "lmc-figure" }, bars(top.map((i) => p[i]), labels, { kept: top.map((i) => keep[i]),
    title, ylabel: "概率（除以温度之后）；蓝：留下，灰：剪掉" }));
  const note = h("p", { class: "lmc-note" }, `整个字表 ${p.length} 个字里留下 ${nKept} 个（图中前 ${top.length} 个里留下 ${nTop} 个）。`
    + (model.get("note") ? ` ${model.get("note")}` : ""));
  return { controls, body: [figure, note], dataset: { prompt: k, kept: nKept } };
}

// ---------- 排列掩码浏览器（第 9 章） ----------
// data.orders[o] 是一个分解顺序；data.masks[o][P - 1] 是 lmcourse.masking.permutation_masks 给的 perm_mask（展平）
function renderPermutation(model) {
  const data = model.get("data"), view = model.get("view"), tokens = data.tokens, T = tokens.length;
  const o = Math.min(view.order || 0, data.orders.length - 1), order = data.orders[o];
  const P = Math.min(Math.max(view.num_predict || T, 1), T), pos = Math.min(view.position || 0, T - 1);
  const perm = data.masks[o][P - 1];
  const rank = [];
  order.forEach((p, k) => { rank[p] = k; });
  const seenQ = tokens.map((_, i) => tokens.map((_, j) => 1 - perm[i * T + j]));
  const seenC = seenQ.map((row, i) => row.map((v, j) => (i === j ? 1 : v)));
  const target = tokens.map((_, i) => rank[i] >= T - P);               // 只预测顺序里的最后 P 个
  const shownQ = seenQ.map((row, i) => (target[i] ? row : row.map(() => -1)));   // 不预测的行：查询流不算，画成灰色
  const rows = tokens.map((t, i) => (target[i] ? `${t}（第 ${rank[i] + 1} 步）` : `${t}（上文）`));
  const blue = (v) => (v < 0 ? [222, 222, 222] : v ? [49, 104, 176] : [238, 242, 250]);
  const controls = h("div", { class: "lmc-controls" },
    slider(model, "顺序编号", "order", o, 0, data.orders.length - 1, 1),
    select(model, "位置", "position", tokens.map((t, i) => `${i}：${t}`), pos),
    slider(model, "预测个数", "num_predict", P, 1, T, 1));
  const can = tokens.filter((_, j) => seenQ[pos][j]);
  const head = h("div", { class: "lmc-note" },
    h("div", {}, `分解顺序：${order.map((p) => tokens[p]).join(" → ")}${P < T ? `（只预测最后 ${P} 个）` : ""}`),
    h("div", {}, target[pos]
      ? `预测“${tokens[pos]}”时能用的上文：${can.length ? can.join("、") : "无（整行被挡住：代码里会均匀地看所有位置，连自己也看得见）"}`
      : `“${tokens[pos]}”只作上文，不被预测：查询流不算这一行（图里是灰色）`));
  const figure = h("div", { class: "lmc-figure" },
    heatmap(seenC, rows, tokens, blue, { cell: 34, highlight: pos, title: "内容流 h：还看得见自己" }),
    heatmap(shownQ, rows, tokens, blue, { cell: 34, highlight: pos, title: "查询流 g：看不见自己的内容" }));
  return { controls, body: [head, figure,
    h("div", { class: "lmc-axis" }, "行：查询（位置上的字与它在顺序里的步数）；列：键（被看的位置）；深色 = 看得见；灰色 = 这一行不被预测，查询流不算")],
  dataset: { order: o, position: pos, numPredict: P } };
}

const RENDER = { attention: renderAttention, positional_encoding: renderPE, sampling: renderSampling,
  permutation: renderPermutation };

const CSS = `
.lmc-explorer-root { font-size: 13px; margin: 0.5em 0; }
.lmc-explorer-root svg text { font-size: 12px; fill: #222; }
.lmc-explorer-root .lmc-title { font-weight: 600; font-size: 13px; }
.lmc-explorer-root .lmc-tick { font-size: 10px; fill: #555; }
.lmc-controls { display: flex; flex-wrap: wrap; gap: 6px 18px; margin-bottom: 6px; }
.lmc-control { display: inline-flex; align-items: center; gap: 6px; }
.lmc-wide input[type=text] { width: 16em; }
.lmc-label { color: #333; }
.lmc-value { min-width: 2.5em; font-variant-numeric: tabular-nums; }
.lmc-figure { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.lmc-panel { display: inline-flex; flex-direction: column; gap: 4px; }
.lmc-live > .lmc-noscript { display: none; }
.lmc-axis, .lmc-note { color: #444; font-size: 12px; margin: 4px 0; }
`;

// 换控件时保留读者正在拖的那一个（和输入框里的字），其余按新的 view 重建；图整个重画
function mergeControls(box, fresh) {
  const key = (c) => c.querySelector("[data-key]").dataset.key;
  const old = new Map([...box.children].map((c) => [key(c), c]));
  const kids = [...fresh.children].map((c) => {
    const prev = old.get(key(c));
    const keep = prev && (key(c).startsWith("__") || prev.contains(document.activeElement));
    return keep ? prev : c;
  });
  box.replaceChildren(...kids);
}

function render({ model, el }) {
  if (!document.getElementById("lmc-explorer-css")) {
    document.head.append(h("style", { id: "lmc-explorer-css" }, CSS));
  }
  const root = h("div", { class: "lmc-explorer-root" });
  const controls = h("div", { class: "lmc-controls" }), body = h("div", { class: "lmc-body" });
  root.append(controls, body);
  el.append(root);
  const draw = () => {
    try {
      const out = RENDER[model.get("kind")](model);
      mergeControls(controls, out.controls);
      body.replaceChildren(...out.body);
      Object.assign(root.dataset, out.dataset);
    } catch (err) {
      body.replaceChildren(h("pre", { class: "lmc-error" }, `交互图出错：${err}`));
      throw err;
    }
  };
  draw();
  for (const name of ["data", "view", "note"]) model.on(`change:${name}`, draw);
  el.dataset.lmcReady = "1";
}

export default { render };
