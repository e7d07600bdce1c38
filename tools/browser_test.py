"""浏览器测试：用无头 Chromium 打开构建好的网页（_build/html），检查读者真正看到的东西。

``make test`` 在构建之后运行它（tools/run_tests.py）。先要装好 Chromium 和中文字体：
``bash tools/install_browser.sh``（Debian 软件包 chromium、fonts-noto-cjk）。

用一个本地 HTTP 服务（端口自动选）提供 _build/html（file:// 下搜索的 JS 可能被拦），
每页用 ``chromium --headless --dump-dom`` 取执行完 JS 之后的 DOM。服务给每个 HTML 页面
末尾注入一小段脚本：页面 load 之后把每张图的 complete/naturalWidth 写进 ``data-lmprobe``
属性，这样 dump 出来的 DOM 里就有浏览器自己的解码结果。外部地址（CDN）一律解析失败
（--host-resolver-rules），离线、在线结果一样。

第 1、2 步逐页检查（页面列表来自 _toc.yml，外加首页 index.html）：
- 数学公式：Sphinx 写出的 ``class="math notranslate nohighlight"``；没有公式的前言页列在 MATH_EXEMPT
  （公式是否真被本站的 MathJax 排好，由第 3 步的 browser_live 数 mjx-container）；
- 图片：每个 <img> 的本地文件存在、data: URI 能解码、浏览器解码后宽度不为 0；
- 进度条和控件：输出里的 tqdm 文本（“0%|”“it/s]”）、控件占位
  （application/vnd.jupyter.widget-view+json、HBox(...)）、空白输出框；
- 各章（chapters/*）有指向本章笔记本的 Colab 链接（主题的启动按钮或本章的徽章）；
- 每页有下载源文件的按钮，指向 _build/html 里存在的文件；各章下载的是 .ipynb。

搜索检查（结果由 JS 渲染，所以在浏览器里查）：
- KEY_TERMS：每章一个关键词，打开 search.html?q=词，渲染出的结果里要有这一章；
- 术语表（book/notation.md）的每个词、PART_TERMS 里的整词与片段：至少找到一个用到它的页面
  （术语表本身不算，除非只有术语表用到它）；
- 各章“加粗并括注英文”的术语（tools/search_dict.py 的词典来源）：结果里要有这一章。
  这两类在一个探针页里直接调用搜索页自己的 Search._parseQuery / _performSearch，一次跑完。

第 3 步（tools/browser_live.py）用 Playwright 像读者一样操作每一页：拦下一切第三方请求，数排好的公式，
逐个拨动每个交互图的控件并把图上的数对照本章算出的数。--plant 在构建结果的副本里埋一个坏处，确认查得出来。

用法：
    python tools/browser_test.py [--html _build/html] [--screenshots /work/logs] [--jobs 2]
    python tools/browser_test.py --plant broken-loader|cdn [--only chapters/05_transformer]
退出码：0 全部通过；1 有问题（逐条列出页面和问题）；2 没装 Chromium 或没有构建结果。
"""
from __future__ import annotations

import argparse
import base64
import binascii
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import browser_live  # noqa: E402
import search_dict  # noqa: E402

# 每章一个关键词：打开 search.html?q=词，结果里要有这一章。_toc.yml 里的每一章都要有一条。
KEY_TERMS = {
    "chapters/01_lm_basics": "困惑度",
    "chapters/02_lstm": "遗忘门",
    "chapters/03_attention": "自注意力",
    "chapters/04_seq2seq": "束搜索",
    "chapters/05_transformer": "位置编码",
    "chapters/06_elmo": "双向语言模型",
    "chapters/07_bert": "掩码语言模型",
    "chapters/08_gpt": "核采样",
    "chapters/09_xlnet": "排列语言模型",
    "chapters/10_ernie": "知识掩码",
    "chapters/11_survey": "预训练",
}

# 整词和它的片段都要搜得到（片段要能在用到整词的页面里找到）
PART_TERMS = {
    "困惑度": ["困惑"],
    "自注意力": ["注意力"],
    "束搜索": ["搜索"],
    "词向量": ["向量"],
    "遗忘门": ["遗忘"],
    "掩码语言模型": ["掩码", "语言模型"],
    "语言模型": ["语言", "模型"],
}

# 没有数学公式的前言页（其余每页都要有公式标记）
MATH_EXEMPT = {"book/how_to_use", "book/references"}

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
PROBE_ATTR = "data-lmprobe"
SEARCH_PROBE = "__lmcourse_search_probe.html"

_IMG_PROBE_JS = """<script>
window.addEventListener("load", function () {
  document.querySelectorAll("img").forEach(function (img) {
    img.setAttribute("%s", (img.complete ? "1" : "0") + ":" + img.naturalWidth);
  });
  document.documentElement.setAttribute("%s-loaded", "1");
});
</script>""" % (PROBE_ATTR, PROBE_ATTR)

_SEARCH_PROBE_JS = """<script>
window.addEventListener("load", function () {
  const terms = %s;
  const out = {};
  for (const term of terms) {
    try {
      const parsed = Search._parseQuery(term);
      const results = Search._performSearch(...parsed);
      out[term] = {split: [...parsed[1]], pages: [...new Set(results.map((r) => r[0]))]};
    } catch (e) {
      out[term] = {error: String(e)};
    }
  }
  const pre = document.createElement("pre");
  pre.id = "lmcourse-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""

_TQDM_RE = re.compile(r"\d{1,3}%\|| \d+/\d+ \[\d+:\d+|it/s\]|s/it\]")
_WIDGET_TEXT_RE = re.compile(r"^\s*(HBox|VBox|FloatProgress|IntProgress|interactive|Output)\(", re.M)
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
         "source", "track", "wbr"}


# ---------------------------------------------------------------- 页面与书的配置

def toc_pages(root: Path = ROOT) -> list[str]:
    """_toc.yml 里的全部页面（docname，不带后缀），按目录顺序，根页在前。"""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages = [re.sub(r"\.(md|ipynb)$", "", str(toc["root"]))]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                pages.append(re.sub(r"\.(md|ipynb)$", "", str(node["file"])))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk({k: v for k, v in toc.items() if k != "root"})
    return list(dict.fromkeys(pages))


def colab_url_for(docname: str, root: Path = ROOT) -> str:
    """一章笔记本的 Colab 地址：由 _config.yml 的 repository 与 launch_buttons 拼出。"""
    import yaml

    cfg = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = cfg["repository"]["url"].rstrip("/")
    repo = repo.split("github.com/", 1)[1]
    branch = cfg["repository"].get("branch", "main")
    prefix = (cfg["repository"].get("path_to_book") or "").strip("/")
    colab = cfg.get("launch_buttons", {}).get("colab_url", "https://colab.research.google.com").rstrip("/")
    path = f"{prefix}/{docname}.ipynb" if prefix else f"{docname}.ipynb"
    return f"{colab}/github/{repo}/blob/{branch}/{path}"


# ---------------------------------------------------------------- 本地服务

class _Handler(http.server.SimpleHTTPRequestHandler):
    search_terms: list[str] = []

    def log_message(self, *args):  # 安静
        pass

    def _send_html(self, text: str):
        body = text.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        local = Path(self.directory) / urllib.parse.unquote(path).lstrip("/")
        if path.endswith("/" + SEARCH_PROBE):
            page = (Path(self.directory) / "search.html").read_text(encoding="utf-8")
            probe = _SEARCH_PROBE_JS % json.dumps(self.search_terms, ensure_ascii=False)
            return self._send_html(_inject(page, probe))
        if path.endswith(".html") and local.is_file():
            return self._send_html(_inject(local.read_text(encoding="utf-8"), _IMG_PROBE_JS))
        return super().do_GET()


def _inject(page: str, script: str) -> str:
    i = page.lower().rfind("</body>")
    return page[:i] + script + page[i:] if i >= 0 else page + script


class Server:
    """在后台线程里提供 html_dir 的 HTTP 服务（127.0.0.1，系统分配的空闲端口）。"""

    def __init__(self, html_dir: Path, search_terms=()):
        handler = type("Handler", (_Handler,), {"search_terms": list(search_terms)})
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(html_dir), **k))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- Chromium

def find_chromium() -> str | None:
    for c in CHROMIUM_CANDIDATES:
        p = shutil.which(c)
        if p:
            return p
    return None


def run_chromium(chromium: str, url: str, *extra: str, timeout: float = 90) -> str:
    """无头 Chromium 打开 url：默认返回执行完 JS 后的 DOM（--dump-dom）。"""
    with tempfile.TemporaryDirectory(prefix="lmcourse-chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--disable-extensions", "--lang=zh-CN", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--virtual-time-budget=10000",
               "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
               *(extra or ("--dump-dom",)), url]
        r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"chromium 退出码 {r.returncode}：{r.stderr.decode('utf-8', 'replace')[-800:]}")
    return r.stdout.decode("utf-8", "replace")


# ---------------------------------------------------------------- 解析 DOM

@dataclass
class PageInfo:
    loaded: bool = False
    math: int = 0
    imgs: list = field(default_factory=list)        # (src, data-lmprobe)
    links: list = field(default_factory=list)       # (href, class)
    outputs: list = field(default_factory=list)     # 每个 cell_output 的 (文本, 图片数, 子元素数)
    widget_scripts: int = 0
    article_text: str = ""
    search_links: list = field(default_factory=list)
    search_summary: str = ""
    probe: str = ""


class _DomParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.info = PageInfo()
        self.stack = []            # (tag, 标记集合)
        self.article = []
        self.outputs = []          # 正在收集的 cell_output：[文本片段, 图片数, 子元素数]
        self.skip = 0              # script/style 内
        self.in_search = 0
        self.in_summary = False
        self.in_probe = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "html" and a.get(PROBE_ATTR + "-loaded") == "1":
            self.info.loaded = True
        if "math" in cls and tag in ("span", "div"):
            self.info.math += 1
        if tag == "img":
            self.info.imgs.append((a.get("src") or "", a.get(PROBE_ATTR)))
        if tag == "a" and a.get("href") is not None:
            self.info.links.append((a["href"], " ".join(cls)))
            if self.in_search:
                self.info.search_links.append(a["href"])
        if tag == "script" and "widget-view" in (a.get("type") or ""):
            self.info.widget_scripts += 1
        for o in self.outputs:
            o[2] += 1
            if tag == "img":
                o[1] += 1
        if tag in _VOID:
            return
        marks = set()
        if tag in ("script", "style"):
            self.skip += 1
            marks.add("skip")
        if tag == "article" and "bd-article" in cls:
            marks.add("article")
        if tag == "div" and "cell_output" in cls:
            self.outputs.append([[], 0, 0])
            marks.add("output")
        if tag == "ul" and "search" in cls:
            self.in_search += 1
            marks.add("search")
        if tag == "p" and "search-summary" in cls:
            self.in_summary = True
            marks.add("summary")
        if tag == "pre" and a.get("id") == "lmcourse-probe":
            self.in_probe = True
            marks.add("probe")
        self.stack.append((tag, marks))

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        while self.stack:
            t, marks = self.stack.pop()
            if "skip" in marks:
                self.skip -= 1
            if "output" in marks:
                text, nimg, nchild = self.outputs.pop()
                self.info.outputs.append(("".join(text), nimg, nchild))
            if "search" in marks:
                self.in_search -= 1
            if "summary" in marks:
                self.in_summary = False
            if "probe" in marks:
                self.in_probe = False
            if t == tag:
                break

    def handle_data(self, data):
        if self.in_probe:
            self.info.probe += data
            return
        if self.skip:
            return
        if self.in_summary:
            self.info.search_summary += data
        if any("article" in m for _t, m in self.stack):
            self.article.append(data)
        for o in self.outputs:
            o[0].append(data)

    def close(self):
        super().close()
        self.info.article_text = "".join(self.article)
        return self.info


def parse_dom(dom: str) -> PageInfo:
    p = _DomParser()
    p.feed(dom)
    return p.close()


# ---------------------------------------------------------------- 逐页检查

def _local_target(html_dir: Path, docname: str, ref: str) -> Path | None:
    """页面里的相对地址对应的本地文件；外部地址返回 None。"""
    parts = urllib.parse.urlsplit(ref)
    if parts.scheme or parts.netloc:
        return None
    base = (html_dir / docname).parent
    return (base / urllib.parse.unquote(parts.path)).resolve()


def _data_uri_ok(src: str) -> bool:
    head, _, payload = src.partition(",")
    try:
        data = base64.b64decode(payload, validate=True) if head.endswith(";base64") \
            else urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        return False
    return len(data) > 0


def check_page(docname: str, info: PageInfo, html_dir: Path, *, math_exempt=MATH_EXEMPT,
               root: Path = ROOT) -> list[str]:
    """一页的问题列表（空表示通过）。docname 如 chapters/01_lm_basics 或 index。"""
    problems = []
    is_chapter = docname.startswith("chapters/")
    if not info.loaded:
        problems.append("页面在 10 秒（虚拟时间）内没有触发 load 事件，图片检查不完整")
    if docname != "index" and docname not in math_exempt and info.math == 0:
        problems.append("没有数学公式标记（span/div.math）：公式没有被 Sphinx 渲染")

    for src, probe in info.imgs:
        short = src if len(src) < 90 else src[:87] + "..."
        if src.startswith("data:"):
            if not _data_uri_ok(src):
                problems.append(f"图片坏了：data: URI 解码失败（{short}）")
                continue
        elif not src:
            problems.append("图片坏了：<img> 没有 src")
            continue
        else:
            target = _local_target(html_dir, docname, src)
            if target is None:
                continue  # 外部图片：这里不查（第 3 步把任何第三方请求都记为问题）
            if not target.is_file():
                problems.append(f"图片坏了：文件不存在（{short}）")
                continue
        if probe is not None:
            complete, _, width = probe.partition(":")
            if complete == "1" and width == "0":
                problems.append(f"图片坏了：浏览器解码后宽度为 0（{short}）")

    if info.widget_scripts:
        problems.append(f"有 {info.widget_scripts} 个控件占位（application/vnd.jupyter.widget-view+json）："
                        "离线或没有保存控件状态时是空白")
    for text, nimg, nchild in info.outputs:
        snippet = " ".join(text.split())[:60]
        if _TQDM_RE.search(text):
            problems.append(f"输出里有进度条文本：“{snippet}”（给这个单元加 remove-output 或 remove-stderr）")
        elif _WIDGET_TEXT_RE.search(text):
            problems.append(f"输出里是控件的文本替身：“{snippet}”")
        elif not text.strip() and nimg == 0 and nchild <= 2:
            problems.append("有空白的输出框（可能是没有保存状态的进度条或控件）")

    hrefs = [h for h, _c in info.links]
    if is_chapter:
        want = colab_url_for(docname, root)
        if want not in hrefs:
            problems.append(f"没有指向本章笔记本的 Colab 链接（应为 {want}）")
    downloads = [h for h, c in info.links if "btn-download-source-button" in c]
    if not downloads:
        problems.append("没有下载源文件的按钮")
    for h in downloads:
        target = _local_target(html_dir, docname, h)
        if target is None or not target.is_file():
            problems.append(f"下载按钮指向不存在的文件：{h}")
        elif is_chapter and target.suffix != ".ipynb":
            problems.append(f"下载按钮给的不是 .ipynb：{h}")
    return problems


def check_index(html_dir: Path, pages) -> list[str]:
    """首页 index.html 是 Jupyter Book 写的跳转页（meta refresh）：它要跳到目录里的根页，且那一页存在。
    根页本身和其余页面一样逐页检查（跳转后的相对地址按根页的位置解析，所以不在 index 的位置上查它）。"""
    f = html_dir / "index.html"
    if not f.is_file():
        return ["构建结果里没有 index.html"]
    m = re.search(r'http-equiv="Refresh"[^>]*url=([^"]+)"', f.read_text(encoding="utf-8"), re.I)
    if not m:
        return []          # 不是跳转页：它自己就是首页，由调用者逐页检查
    target = m.group(1).strip()
    problems = []
    if _docname_of(target) != pages[0]:
        problems.append(f"index.html 跳到 {target}，不是目录的根页 {pages[0]}.html")
    if not (html_dir / urllib.parse.unquote(target)).is_file():
        problems.append(f"index.html 跳到不存在的 {target}")
    return problems


def check_pages(html_dir: Path, docnames, *, chromium=None, jobs=2, math_exempt=MATH_EXEMPT,
                root: Path = ROOT):
    """逐页打开并检查。返回 ({docname: PageInfo}, [(docname, 问题), ...])。"""
    chromium = chromium or find_chromium()
    infos, problems = {}, []
    with Server(html_dir) as srv:
        def one(doc):
            f = html_dir / f"{doc}.html"
            if not f.is_file():
                return doc, None, [f"构建结果里没有这一页（{f.relative_to(html_dir)}）"]
            try:
                info = parse_dom(run_chromium(chromium, srv.url + urllib.parse.quote(f"{doc}.html")))
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                return doc, None, [f"浏览器打不开：{e}"]
            return doc, info, check_page(doc, info, html_dir, math_exempt=math_exempt, root=root)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for doc, info, probs in pool.map(one, docnames):
                if info is not None:
                    infos[doc] = info
                problems.extend((doc, p) for p in probs)
    return infos, problems


# ---------------------------------------------------------------- 搜索检查

def _norm(text: str) -> str:
    return re.sub(r"\s+|\\[()\[\]]|\$", "", text).lower()


def _docname_of(href: str) -> str:
    path = urllib.parse.unquote(urllib.parse.urlsplit(href).path)
    return path[:-5] if path.endswith(".html") else path


def search_page(chromium: str, base_url: str, term: str) -> tuple[list[str], str]:
    """真实的搜索页 search.html?q=词：返回渲染出的结果页面（docname）和结果摘要。"""
    info = parse_dom(run_chromium(chromium, base_url + "search.html?q=" + urllib.parse.quote(term)))
    return list(dict.fromkeys(_docname_of(h) for h in info.search_links)), info.search_summary.strip()


def probe_search(chromium: str, base_url: str) -> dict:
    """探针页：在搜索页里对一批词调用 Search._parseQuery/_performSearch，返回 {词: {split, pages}}。"""
    info = parse_dom(run_chromium(chromium, base_url + SEARCH_PROBE, timeout=180))
    if not info.probe:
        raise RuntimeError("搜索探针页没有输出结果（searchtools.js 出错或索引没加载）")
    return json.loads(info.probe)


# ---------------------------------------------------------------- 截图

def screenshots(chromium: str, html_dir: Path, outdir: Path, infos: dict[str, PageInfo]) -> list[Path]:
    """首页、第一张图所在的章节位置、search.html?q=困惑度 的截图（1200×3000）。"""
    outdir.mkdir(parents=True, exist_ok=True)
    shots = [("index", "index.html")]
    for doc, info in infos.items():
        if doc.startswith("chapters/") and any("_images/" in s for s, _p in info.imgs):
            shots.append((doc.replace("/", "_"), f"{doc}.html"))
            break
    shots.append(("search_困惑度", "search.html?q=" + urllib.parse.quote("困惑度")))
    done = []
    with Server(html_dir) as srv:
        for name, url in shots:
            path = outdir / f"browser_{name}.png"
            run_chromium(chromium, srv.url + url, f"--screenshot={path}", "--window-size=1200,3000")
            done.append(path)
    return done


# ---------------------------------------------------------------- 演习

def plant_drill(chromium: str, html_dir: Path, plant: str, doc: str) -> int:
    """埋一个坏处，确认浏览器测试查得出来：查出来返回 0，查不出来返回 1。"""
    copy = browser_live.planted_copy(html_dir, plant, doc)
    try:
        with Server(copy) as srv:
            _counts, problems = browser_live.run(copy, srv.url, [doc], chromium)
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)
    if problems:
        print(f"演习 {plant}：{doc} 查出了 {len(problems)} 个问题（应当如此），例如：{problems[0][1]}")
        return 0
    print(f"演习 {plant}：{doc} 埋了坏处，浏览器测试却没有查出来")
    return 1


# ---------------------------------------------------------------- 主程序

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="用无头 Chromium 检查构建好的网页")
    ap.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="构建结果目录")
    ap.add_argument("--screenshots", type=Path, help="把截图存到这个目录")
    ap.add_argument("--jobs", type=int, default=2, help="同时运行的浏览器个数")
    ap.add_argument("--plant", choices=browser_live.PLANTS,
                    help="演习：在构建结果的副本里埋一个坏处，只查 --only 那一页，查不出问题才算失败")
    ap.add_argument("--only", default="chapters/05_transformer", help="--plant 时检查的页面")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    chromium = find_chromium()
    if not chromium:
        print("没有找到 chromium：先运行 bash tools/install_browser.sh（需要 root）")
        return 2
    html_dir = args.html.resolve()
    if not (html_dir / "searchindex.js").is_file():
        print(f"{html_dir} 里没有构建结果：先运行 jupyter-book build . -W --keep-going")
        return 2

    if args.plant:
        return plant_drill(chromium, html_dir, args.plant, args.only)

    pages = toc_pages()
    chapters = [d for d in pages if d.startswith("chapters/")]
    problems = []
    missing = [d for d in chapters if d not in KEY_TERMS]
    for d in missing:
        problems.append((d, "tools/browser_test.py 的 KEY_TERMS 里没有这一章的关键词：请补一条"))

    # 1. 逐页（index.html 是跳到根页的跳转页时，单独查跳转）
    index_problems = check_index(html_dir, pages)
    problems.extend(("index", p) for p in index_problems)
    redirect = re.search(r"Refresh", (html_dir / "index.html").read_text(encoding="utf-8")) \
        if (html_dir / "index.html").is_file() else None
    docs = pages if redirect else ["index"] + pages
    infos, page_problems = check_pages(html_dir, docs, chromium=chromium, jobs=args.jobs)
    problems.extend(page_problems)

    # 2. 搜索
    glossary = search_dict.glossary_terms()
    parts = [t for whole, ps in PART_TERMS.items() for t in [whole, *ps]]
    chapter_terms = {d: search_dict.chapter_terms(ROOT / f"{d}.ipynb") for d in chapters
                     if (ROOT / f"{d}.ipynb").is_file()}
    probe_terms = list(dict.fromkeys(glossary + parts + [t for ts in chapter_terms.values() for t in ts]))
    texts = {d: _norm(i.article_text) for d, i in infos.items() if d != "index"}
    key_jobs = [(d, KEY_TERMS[d]) for d in chapters if d in KEY_TERMS]

    with Server(html_dir, probe_terms) as srv:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            probe_future = pool.submit(probe_search, chromium, srv.url)
            key_results = list(pool.map(lambda job: (job, search_page(chromium, srv.url, job[1])), key_jobs))
            try:
                probe = probe_future.result()
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
                problems.append(("search", f"搜索探针失败：{e}"))
                probe = {}

    for (doc, term), (found, summary) in key_results:
        if doc not in found:
            problems.append(("search", f"搜“{term}”（{doc} 的关键词）结果里没有 {doc}："
                                       f"{summary or '没有结果'}；找到 {found[:5]}"))

    only_glossary, recall = [], []
    for term in list(dict.fromkeys(glossary + parts)):
        r = probe.get(term)
        if r is None:
            continue
        if "error" in r:
            problems.append(("search", f"搜“{term}”时 JS 出错：{r['error']}"))
            continue
        users = {d for d, t in texts.items() if d != "book/notation" and _norm(term) in t}
        found = set(r["pages"])
        if users:
            hit = found & users
            if not hit:
                problems.append(("search", f"搜“{term}”找不到用到它的页面（用到它的有 {sorted(users)[:4]}，"
                                           f"查询切成 {r['split']}，结果 {sorted(found)[:4]}）"))
            else:
                recall.append((len(hit) / len(users), term, len(hit), len(users)))
        else:
            only_glossary.append(term)
            if "book/notation" not in found:
                problems.append(("search", f"搜“{term}”连术语表都找不到（查询切成 {r['split']}）"))
    for doc, terms in chapter_terms.items():
        for term in terms:
            r = probe.get(term, {})
            if doc not in r.get("pages", []):
                problems.append(("search", f"搜“{term}”（{doc} 加粗的术语）结果里没有 {doc}："
                                           f"查询切成 {r.get('split')}，结果 {sorted(r.get('pages', []))[:4]}"))

    # 3. 像读者一样操作（Playwright）：公式排好了没有、交互图动不动、数值对不对、有没有第三方请求
    with Server(html_dir) as srv:
        live, live_problems = browser_live.run(html_dir, srv.url, pages, chromium, args.screenshots)
    problems.extend(live_problems)

    shots = []
    if args.screenshots:
        shots = screenshots(chromium, html_dir, args.screenshots, infos)

    # 3. 汇总
    print(f"浏览器测试：检查了 {len(docs)} 页（_toc.yml 的 {len(pages)} 页{'，首页是跳到根页的跳转页' if redirect else ' + 首页'}），"
          f"搜索了 {len(key_jobs)} 个各章关键词（search.html?q=）和 {len(probe_terms)} 个术语"
          f"（术语表 {len(glossary)} 个、整词与片段 {len(parts)} 个、各章加粗术语 "
          f"{sum(len(t) for t in chapter_terms.values())} 个）")
    if recall:
        full = sum(1 for r in recall if r[0] == 1)
        worst = sorted(recall)[:5]
        print(f"  召回：{full}/{len(recall)} 个术语找到了全部用到它的页面；最低的："
              + "；".join(f"{t} {h}/{u}" for _r, t, h, u in worst))
    if only_glossary:
        print(f"  只有术语表用到的术语（{len(only_glossary)} 个，不算错）：{'、'.join(only_glossary)}")
    print("  公式（排好 / 数学元素）与交互图（响应且数值正确 / 页上个数）：")
    for doc, c in live.items():
        if c:
            print(f"    {doc}: 公式 {c['typeset']}/{c['math']}" + (f"，交互图 {c['responding']}/{c['explorers']}"
                                                               if c["explorers"] else ""))
    for p in shots:
        print(f"  截图：{p}")
    print(f"  用时 {time.perf_counter() - t0:.0f} 秒")
    if problems:
        print(f"\n发现 {len(problems)} 个问题：")
        for doc, msg in problems:
            print(f"  [{doc}] {msg}")
        return 1
    print("  全部通过。")
    return 0


if __name__ == "__main__":
    sys.exit(main())
