// 发布网页上的交互图：找到各章存下的 <div class="lmc-explorer">，用其中的 JSON 数据挂上
// 与 Jupyter 里同一个 ES 模块（lmcourse/static/explorers.js，构建时复制到 _static）。
// 这里的 model 只是页面里的一个小对象：控件改 view，图在浏览器里重画，不需要内核，也不联网。
import explorers from "./explorers.js";

function pageModel(state) {
  const values = { ...state, live: false, note: "" };
  const handlers = {};
  return {
    get: (key) => values[key],
    set: (key, value) => {
      values[key] = value;
      (handlers[`change:${key}`] || []).forEach((f) => f());
    },
    save_changes: () => {},
    on: (event, f) => { (handlers[event] = handlers[event] || []).push(f); },
    off: () => {},
  };
}

function mount(el) {
  if (el.dataset.lmcMounted) return;
  el.dataset.lmcMounted = "1";
  const state = JSON.parse(el.querySelector("script[type='application/json']").textContent);
  const host = document.createElement("div");
  el.append(host);
  explorers.render({ model: pageModel(state), el: host });
  el.classList.add("lmc-live");
  el.closest(".cell")?.classList.add("lmc-live-cell");   // custom.css 据此在屏幕上收起紧跟其后的静态图
}

document.querySelectorAll(".lmc-explorer").forEach(mount);
