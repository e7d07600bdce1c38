"""Colab 彩排：在一个只装了 Colab 预装包（按 Colab 的版本）的新 venv 里，跑某一章自己的环境准备单元，再从头到尾执行这一章。

用法：python tools/colab_rehearsal.py [chapters/09_xlnet.ipynb ...]      # make colab
      python tools/colab_rehearsal.py --plant "ipywidgets>=8"           # 演习一次失败：快照里的这条依赖换掉，
                                                                        # 彩排必须报出来（退出码 1）
      （--inside 是脚本在新 venv 里调用自己时用的，不要手动加）
用时（2 核、有别的任务在跑、pip 缓存是热的）：建 venv 约 2 分钟，环境准备单元约 1 分钟，第 9 章 1–3 分钟。

步骤：
1. 在 _build/colab_venv 新建 venv（每次都删掉重建），装 COLAB_INSTALL 里的包：Colab 预装的、与 lmcourse 有关的包，
   版本照抄 Colab 的 pip freeze；另加 google.colab 的替身模块，使环境准备单元走 Colab 分支。
2. 把仓库当前的工作区（git 跟踪的文件和没被忽略的新文件）拷进 _build/colab_src 并提交成一个 git 仓库，
   环境准备单元里的 git+https://github.com/... 换成 git+file://…/_build/colab_src：走的是 Colab 上同一条 pip 安装路径。
3. 在新 venv 的内核里执行这一章（单元逐个执行，环境准备单元前后各记一次已装的包），最后加几个检查单元。

检查（任何一项不通过都以 1 退出）：
- pyproject.toml 的每个下限都容得下 Colab 的版本；
- 环境准备单元只新增包：Colab 预装的包（torch、ipywidgets、numpy……）版本不变，dist-info 的安装时间也不变（没被重装）；
- lmcourse 装进了 venv 的 site-packages（不是从仓库目录导入的），它的字体、检查点都在；
- 这一章每个单元都不出错；所有输出（含部件里的输出）里没有 Traceback、缺字警告（Glyph … missing）、“findfont”；
- 执行的是 tools/colab_notebooks.py 转出的 Colab 版笔记本（普通 Markdown），不是 MyST 源文件；
- ipywidgets 是 7.7.1；章里的交互图单元输出部件视图，它是带前端模块（_esm）和数据的 anywidget；
  lmcourse.widgets 的四个浏览器在 ipywidgets 7 下都能建出来、显示，连着内核时能为新句子算出新例子；
- matplotlib 当前的字体设置解析到 lmcourse 自带的 Noto Sans SC 文件。
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
VENV = BUILD / "colab_venv"
SRC = BUILD / "colab_src"
CONTENT = VENV / "content"            # 内核的工作目录，相当于 Colab 的 /content
KERNEL = "colab-rehearsal"
DEFAULT_CHAPTERS = ["chapters/09_xlnet.ipynb"]   # 有部件（排列掩码浏览器）、中文图、sklearn 和 transformers

# Colab 的版本：照抄 googlecolab/backend-info 仓库的 pip-freeze.gpu.txt（2026 年年中的一版；
# 2025 年全年 numpy 2.0.2、pandas 2.2.2、ipywidgets 7.7.1 都没变）。只列与本课程有关的包和内核要用的包。
# Colab 用的是 Python 3.12，这里是 3.11：这些版本在 PyPI 上都有 3.11 的 wheel。
COLAB_VERSIONS = {
    "torch": "2.11.0",                 # Colab 的是 2.11.0+cu128；下面实际装的是本机的 2.13.0（见 COLAB_INSTALL）
    "numpy": "2.0.2",
    "pandas": "2.2.2",
    "scipy": "1.16.3",
    "matplotlib": "3.10.0",
    "scikit-learn": "1.6.1",
    "tqdm": "4.67.3",
    "jieba": "0.42.1",
    "transformers": "5.9.0",
    "tokenizers": "0.22.2",
    "huggingface_hub": "1.17.0",
    "safetensors": "0.7.0",
    "pillow": "11.3.0",
    "ipywidgets": "7.7.1",
    "widgetsnbextension": "3.6.10",
    "jupyterlab_widgets": "3.0.16",
    "notebook": "6.5.7",               # widgetsnbextension 3 依赖 notebook
    "ipykernel": "6.17.1",
    "ipython": "7.34.0",
    "jupyter_client": "7.4.9",
    "traitlets": "5.7.1",
    "tornado": "6.5.1",
    "pyzmq": "26.2.1",
    "matplotlib-inline": "0.2.2",
    "nbclient": "0.10.4",              # 执行 notebook 用；Colab 上也预装了这两个
    "nbformat": "5.10.4",
    "psutil": "5.9.5",
}
# 上面那些包拉进来的依赖也钉在 Colab 的版本上（同一份 pip-freeze.gpu.txt），作为 pip 的约束（-c）：
# 不钉的话，PyPI 每发一个新版，彩排的环境就变一次，通过与否也可能跟着变。Colab 上没有的（如 jedi）不钉。
COLAB_DEPENDENCY_PINS = {
    "annotated-doc": "0.0.4", "anyio": "4.13.0", "argon2-cffi": "25.1.0", "argon2-cffi-bindings": "25.1.0",
    "arrow": "1.4.0", "attrs": "26.1.0", "backcall": "0.2.0", "beautifulsoup4": "4.13.5", "bleach": "6.3.0",
    "certifi": "2026.5.20", "cffi": "2.0.0", "click": "8.4.1", "cloudpickle": "3.1.2", "contourpy": "1.3.3",
    "cycler": "0.12.1", "debugpy": "1.8.15", "decorator": "4.4.2", "defusedxml": "0.7.1", "entrypoints": "0.4",
    "fastjsonschema": "2.21.2", "filelock": "3.29.0", "fonttools": "4.63.0", "fqdn": "1.5.1", "fsspec": "2025.3.0",
    "h11": "0.16.0", "hf-xet": "1.5.0", "httpcore": "1.0.9", "httpx": "0.28.1", "idna": "3.18",
    "ipython-genutils": "0.2.0", "isoduration": "20.11.0", "Jinja2": "3.1.6", "joblib": "1.5.3",
    "jsonpointer": "3.1.1", "jsonschema": "4.26.0", "jsonschema-specifications": "2025.9.1",
    "jupyter-events": "0.12.1", "jupyter_core": "5.9.1", "jupyter_server": "2.14.0",
    "jupyter_server_terminals": "0.5.4", "jupyterlab_pygments": "0.3.0", "kiwisolver": "1.5.0", "lark": "1.3.1",
    "markdown-it-py": "4.2.0", "MarkupSafe": "3.0.3", "mdurl": "0.1.2", "mistune": "3.2.1", "mpmath": "1.3.0",
    "nbclassic": "1.3.3", "nbconvert": "7.17.1", "nest-asyncio": "1.6.0", "networkx": "3.6.1",
    "notebook_shim": "0.2.4", "overrides": "7.7.0", "packaging": "26.2", "pandocfilters": "1.5.1", "parso": "0.8.7",
    "pexpect": "4.9.0", "pickleshare": "0.7.5", "platformdirs": "4.10.0", "prometheus_client": "0.25.0",
    "prompt_toolkit": "3.0.52", "ptyprocess": "0.7.0", "pycparser": "3.0", "Pygments": "2.20.0",
    "pyparsing": "3.3.2", "python-dateutil": "2.9.0.post0", "python-json-logger": "4.1.0", "pytz": "2025.2",
    "PyYAML": "6.0.3", "referencing": "0.37.0", "regex": "2025.11.3", "rfc3339-validator": "0.1.4",
    "rfc3986-validator": "0.1.1", "rfc3987-syntax": "1.1.0", "rich": "13.9.4", "rpds-py": "2026.5.1",
    "Send2Trash": "2.1.0", "shellingham": "1.5.4", "six": "1.17.0", "soupsieve": "2.8.4", "sympy": "1.14.0",
    "terminado": "0.18.1", "threadpoolctl": "3.6.0", "tinycss2": "1.4.0", "typer": "0.25.1",
    "typing_extensions": "4.15.0", "tzdata": "2026.2", "uri-template": "1.3.0", "wcwidth": "0.7.0",
    "webcolors": "25.10.0", "webencodings": "0.5.1", "websocket-client": "1.9.0",
}
# 实际安装的版本。torch 用本机磁盘上的 2.13.0 CPU 版（pip install torch==2.13.0 直接取本地文件；
# 写成范围会让 pip 去下几 GB 的 CUDA 版）。Colab 上的 torch 比它旧或新都无所谓：
# 彩排要验证的是环境准备单元“不重装已有的 torch”，而不是某个 torch 版本。
# （Colab 的 setuptools 是 75.2.0，而 torch 2.13.0 要 setuptools>=77.0.3，所以 setuptools 不照抄。）
COLAB_INSTALL = dict(COLAB_VERSIONS, torch="2.13.0")
COLAB_PIP = "24.1.2"                   # Colab 的 pip 版本：环境准备单元里的 pip install 由它来解析依赖

# 环境准备单元只在 "google.colab" in sys.modules 时安装：Colab 的内核启动时就导入了它，这里放一个替身
STUB = '"""Colab 彩排用的替身：真正的 google.colab 只在 Colab 上有。只为让 "google.colab" in sys.modules 成立。"""\n'

# 缺字时 matplotlib 写的是 “Glyph 27880 (\N{...}) missing from font(s) DejaVu Sans.”；找不到字体时写 “findfont: ...”
MARKERS = {"Glyph … missing": r"Glyph \d+.*missing", "findfont": r"findfont", "Traceback": r"Traceback"}


def log(msg):
    print(f"[colab 彩排] {msg}", flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(map(str, cmd)))
    t = time.perf_counter()
    subprocess.run(list(map(str, cmd)), check=True, **kw)
    if time.perf_counter() - t > 5:
        log(f"  （{time.perf_counter() - t:.0f} 秒）")


# ---------- 在外面：建 venv、拷源码 ----------
def build_venv():
    if VENV.exists():
        t = time.perf_counter()
        shutil.rmtree(VENV)                   # 上一次彩排的 venv：每次都从零建
        log(f"删掉上次的 {VENV}：{time.perf_counter() - t:.0f} 秒")
    run([sys.executable, "-m", "venv", VENV])
    py = VENV / "bin" / "python"
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run(pip + [f"pip=={COLAB_PIP}"])
    check_torch_is_local(py)
    # 一条命令装完（每多一次 pip 就多几秒启动和解析）。--no-compile：不预先编译几万个 .py（torch、transformers……），
    # 省下半分钟以上；内核导入时只编译用到的那些。环境准备单元里的 pip install 照 Colab 的样子，不加这个选项。
    constraints = VENV / "colab-constraints.txt"
    constraints.write_text("".join(f"{k}=={v}\n" for k, v in COLAB_DEPENDENCY_PINS.items()), encoding="utf-8")
    run(pip + ["--no-compile", "-c", constraints] + [f"{name}=={version}" for name, version in COLAB_INSTALL.items()])
    freeze = subprocess.run([py, "-m", "pip", "freeze", "--all"], check=True, capture_output=True, text=True).stdout
    (VENV / "pip-freeze.txt").write_text(freeze, encoding="utf-8")
    log(f"  装好的包（pip freeze）记在 {VENV / 'pip-freeze.txt'}")
    site = site_packages(VENV)
    (site / "google" / "colab").mkdir(parents=True)            # 没有 google/__init__.py：google 仍是命名空间包
    (site / "google" / "colab" / "__init__.py").write_text(STUB, encoding="utf-8")
    run([py, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL, "--display-name", "Colab 彩排"],
        stdout=subprocess.DEVNULL)
    CONTENT.mkdir()
    return py


def check_torch_is_local(py):
    """torch 只能取本机磁盘上的 CPU wheel：先空跑一次解析（不下载、不安装），它要取的不是本地文件就停下，
    免得 pip 去下几 GB 的 CUDA 版。"""
    spec = f"torch=={COLAB_INSTALL['torch']}"
    report = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--dry-run",
                             "--ignore-installed", "--no-deps", "--report", "-", spec],
                            check=True, capture_output=True, text=True).stdout
    urls = [item["download_info"]["url"] for item in json.loads(report)["install"]]
    if len(urls) != 1 or not urls[0].startswith("file:"):
        sys.exit(f"{spec} 要取的不是本机的 wheel：{urls}。彩排不去下载 torch（PyPI 上的是几 GB 的 CUDA 版）。")
    log(f"  {spec} 取本机的 {urls[0]}")


def plant(pyproject_text, spec):
    """把 pyproject.toml 依赖表里与 spec 同名的那一条换成 spec（演习失败用）。"""
    from packaging.requirements import Requirement

    name = Requirement(spec).name
    if name.lower() == "torch":
        sys.exit("不演习 torch：那会让 pip 去下 CUDA 版的 torch")
    pattern = re.compile(rf'^(\s*)"{re.escape(name)}\b[^"]*",\s*$', re.M | re.I)
    if len(pattern.findall(pyproject_text)) != 1:
        sys.exit(f"pyproject.toml 的依赖表里没有恰好一条 {name}")
    return pattern.sub(lambda m: f'{m.group(1)}"{spec}",', pyproject_text)


def snapshot_source(planted=None):
    """把工作区拷进 SRC 并提交：git 跟踪的文件（含未提交的改动）和还没 git add、但也没被 .gitignore 忽略的新文件，
    即“全部提交之后”仓库里会有的文件。干净的克隆（CI）里两者相同；本地多半有别人还没提交的新文件，
    只拷跟踪的文件会让改过的 __init__.py 导入不到它们。没跟踪的包文件列出来：提交时别忘了 git add。"""
    shutil.rmtree(SRC, ignore_errors=True)
    SRC.mkdir(parents=True)
    ls = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(ls, cwd=ROOT, check=True, capture_output=True).stdout
    untracked = subprocess.run(["git", "ls-files", "-z", "--others", "--exclude-standard", "lmcourse", "pyproject.toml"],
                               cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    if any(untracked):
        log("还没 git add 的包文件（也拷进去了；Colab 上要提交之后才有）：" + "、".join(n for n in untracked if n))
    for name in files.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (SRC / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, SRC / name)
    if planted:
        pyproject = SRC / "pyproject.toml"
        pyproject.write_text(plant(pyproject.read_text(encoding="utf-8"), planted), encoding="utf-8")
        log(f"演习：快照的 pyproject.toml 里换成了 {planted}，彩排应当不通过")
    git = ["git", "-C", SRC, "-c", "user.name=colab-rehearsal", "-c", "user.email=colab-rehearsal@localhost"]
    run(git[:3] + ["init", "-q", "-b", "main"])
    run(git + ["add", "-A"])
    run(git + ["commit", "-q", "-m", "彩排用的快照"])


def site_packages(venv):
    found = list((venv / "lib").glob("python3*/site-packages"))
    if len(found) != 1:
        sys.exit(f"找不到 {venv} 的 site-packages：{found}")
    return found[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("chapters", nargs="*")
    parser.add_argument("--inside", action="store_true")
    parser.add_argument("--plant", metavar="REQUIREMENT", help='演习失败：快照里换掉一条依赖，如 "ipywidgets>=8"')
    args = parser.parse_args()
    chapters = [Path(p).resolve() for p in (args.chapters or [ROOT / c for c in DEFAULT_CHAPTERS])]
    if args.inside:
        sys.exit(inside(chapters))
    if args.plant:
        plant((ROOT / "pyproject.toml").read_text(encoding="utf-8"), args.plant)      # 先检查，别白建 venv
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")   # 内核启动时 debugpy 关于 frozen modules 的提示
    t = time.perf_counter()
    py = build_venv()
    log(f"venv 建好了：{time.perf_counter() - t:.0f} 秒")
    snapshot_source(args.plant)
    code = subprocess.call([py, __file__, "--inside", *colab_versions(chapters)])
    log(f"总用时 {time.perf_counter() - t:.0f} 秒（含建 venv）；" + ("全部通过" if code == 0 else "有检查没通过"))
    sys.exit(code)


sys.path.insert(0, str(ROOT / "tools"))


def colab_versions(chapters):
    """彩排的是 Colab 真正打开的那份：tools/colab_notebooks.py 转成普通 Markdown 的笔记本（在本机的 venv 里转，
    它要 pybtex；新 venv 只有 Colab 的包）。转出来还带 MyST 标记就直接不通过。"""
    import colab_notebooks

    out = BUILD / "colab_rehearsal_notebooks"
    if colab_notebooks.main(["--out", str(out), *map(str, chapters)]) != 0:
        log("Colab 版笔记本里还有 MyST 标记：不通过")
        sys.exit(1)
    return [out / "chapters" / p.name for p in chapters]


# ---------- 在新 venv 里：执行、检查 ----------
def installed(site):
    """site-packages 里每个包的 (版本, dist-info 目录名, 安装时间)：像 pip freeze，但多记了安装时间。"""
    out = {}
    for info in site.glob("*.dist-info"):
        meta = (info / "METADATA").read_text(encoding="utf-8", errors="replace")
        name = re.search(r"^Name:\s*(\S+)", meta, re.M).group(1)
        version = re.search(r"^Version:\s*(\S+)", meta, re.M).group(1)
        stamp = max(p.stat().st_mtime_ns for p in (info, info / "RECORD") if p.exists())
        out[re.sub(r"[-_.]+", "-", name).lower()] = (version, info.name, stamp)
    return out


def check_lower_bounds(failures, pyproject=ROOT / "pyproject.toml"):
    """pyproject.toml 的依赖下限必须容得下 Colab 的版本，否则 Colab 上的 pip 会升级预装的包。"""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    colab = {canonicalize_name(k): v for k, v in COLAB_VERSIONS.items()}
    for dep in map(Requirement, deps):
        version = colab.get(canonicalize_name(dep.name))
        if version is None:
            log(f"  {dep}：Colab 没有预装，由环境准备单元安装")
        elif dep.specifier.contains(version, prereleases=True):
            log(f"  {dep}：Colab 的 {version} 满足")
        else:
            failures.append(f"pyproject.toml 的 {dep} 不容 Colab 的 {dep.name} {version}：Colab 上会被升级")


PROBE_START = """\
import sys
import google.colab   # 替身；Colab 的内核启动时就导入了 google.colab
print(sys.executable)
"""

PROBE_FONT = """\
# 彩排检查：这一章跑完之后 matplotlib 的字体设置解析到哪个文件
import json
import ipywidgets, matplotlib, numpy, torch, transformers
from matplotlib import font_manager, rcParams
import lmcourse
from lmcourse import viz

font_file = font_manager.findfont(font_manager.FontProperties(family=rcParams["font.family"]),
                                  fallback_to_default=False)
print("REHEARSAL " + json.dumps({
    "versions": {m.__name__: m.__version__ for m in (ipywidgets, matplotlib, numpy, torch, transformers)},
    "lmcourse": lmcourse.__file__, "font_family": list(rcParams["font.family"]),
    "sans_serif": list(rcParams["font.sans-serif"]), "font_file": font_file, "bundled_font": str(viz.FONT_PATH),
}, ensure_ascii=False))
"""

PROBE_WIDGETS = """\
# 彩排检查：lmcourse.widgets 的每个浏览器在这个 ipywidgets 下建出来、显示成部件视图；
# 前端模块随部件状态（_esm）一起送到前端；读者输入新句子时（前端写 request）内核算出新例子
from IPython.display import display
from lmcourse import data, widgets
from lmcourse.models import gpt

gpt_model, _ = gpt.from_checkpoint()
explorers = {
    "attention_explorer": lambda: widgets.attention_explorer(widgets.char_attention_examples("我爱北京天安门"), query=1,
                                                             compute=widgets.char_attention_examples),
    "positional_encoding_explorer": lambda: widgets.positional_encoding_explorer(max_len=64, d_model=128, dims=(4, 40)),
    "sampling_explorer": lambda: widgets.sampling_explorer(gpt_model, data.lm_tokenizer(), ["今天", "中国"]),
    "permutation_explorer": lambda: widgets.permutation_explorer("我爱纽约"),
}
for name, make in explorers.items():
    w = make()
    display(w)
    assert "export default" in w._esm and w.data, name
    if w.data["can_compute"]:
        before = len(str(w.data))
        w.request = {"text": "今天天气很好", "n": 1}
        assert len(str(w.data)) > before and not w.note, f"{name}：输入新句子后没有算出新例子（{w.note}）"
    print("WIDGET", name, w.model_id)
"""


def text_of(output):
    parts = [output.get("text", "")]
    parts += [v if isinstance(v, str) else json.dumps(v) for k, v in output.get("data", {}).items() if k.startswith("text/")]
    if output.get("output_type") == "error":
        parts += [output.get("ename", ""), output.get("evalue", ""), "Traceback"]
    return "".join("".join(p) if isinstance(p, list) else p for p in parts)


def inside(chapters):
    import nbformat

    sys.path.insert(0, str(ROOT / "tools"))
    import chapter_header

    failures = []
    log("pyproject.toml（快照里的，即 Colab 上装的那份）的下限与 Colab 的版本：")
    check_lower_bounds(failures, SRC / "pyproject.toml")
    url, _ = chapter_header.repository()
    wanted = chapter_header.setup_source()
    for path in chapters:                 # 这里的 path 已是 Colab 版（main 里用 colab_notebooks 转好的）
        nb = nbformat.read(path, as_version=4)
        setup = [i for i, c in enumerate(nb.cells) if c.get("id") == "colab-setup"]
        if len(setup) != 1 or nb.cells[setup[0]].source != wanted:
            failures.append(f"{path.name}：找不到与 tools/chapter_header.py 一致的环境准备单元（id colab-setup）")
            continue
        target = f"git+{url}.git"
        source = nb.cells[setup[0]].source
        if source.count(target) != 1:
            failures.append(f"{path.name}：环境准备单元里没有恰好一处 {target}，无法换成本地仓库")
            continue
        nb.cells[setup[0]].source = source.replace(target, f"git+file://{SRC}")
        rehearse(nb, path, setup[0], failures)
    for f in failures:
        log("不通过：" + f)
    return 1 if failures else 0


def rehearse(nb, path, setup_index, failures):
    import nbformat

    from run_chapters import Client       # 它绕开了 nbclient 在部件单元上偶尔干等到超时的问题

    site = site_packages(VENV)
    probes = {name: nbformat.v4.new_code_cell(src) for name, src in
              (("start", PROBE_START), ("font", PROBE_FONT), ("widgets", PROBE_WIDGETS))}
    chapter_cells = list(nb.cells)
    nb.cells = [probes["start"], *chapter_cells, probes["font"], probes["widgets"]]
    client = Client(nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(CONTENT)}})
    log(f"执行 {path.name}（{len(chapter_cells)} 个单元，前后加 3 个检查单元），内核 {KERNEL}，工作目录 {CONTENT}")
    t = time.perf_counter()
    crashed = False
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            is_setup = cell is chapter_cells[setup_index]
            if is_setup:
                before, c = installed(site), time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except Exception as err:                        # CellExecutionError、超时……
                failures.append(f"{path.name} 第 {index - 1} 个单元出错：{type(err).__name__}: {str(err)[-1500:]}")
                crashed = True
                break
            if is_setup:
                log(f"  环境准备单元（pip install lmcourse @ git+file://…）：{time.perf_counter() - c:.0f} 秒")
                compare_installed(before, installed(site), failures)
        widget_state = dict(client.widget_state)          # model_id -> 部件状态（Output 部件的 outputs 也在里面）
    log(f"  {path.name} 执行完：{time.perf_counter() - t:.0f} 秒（含环境准备单元）")
    executed = VENV / f"{path.stem}.executed.ipynb"
    nbformat.write(nb, executed)
    log(f"  执行后的 notebook 存在 {executed}（检查不通过时看这里）")
    if crashed:                                          # 后面的单元没执行，输出不全：不再往下查
        return
    check_kernel(nb.cells[0], failures)
    check_outputs(path, nb.cells, widget_state, failures)
    check_font(probes["font"], site, failures)
    check_widgets(path, chapter_cells, probes["widgets"], widget_state, failures)


def compare_installed(before, after, failures):
    added = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and after[k] != before[k])
    removed = sorted(set(before) - set(after))
    log("  环境准备单元新装的包：" + "、".join(f"{k} {after[k][0]}" for k in added))
    for k in changed:
        old, new = before[k], after[k]
        what = f"{old[0]} → {new[0]}" if old[0] != new[0] else f"{old[0]} 被重装（dist-info 的安装时间变了）"
        failures.append(f"环境准备单元动了 Colab 预装的 {k}：{what}")
    for k in removed:
        failures.append(f"环境准备单元卸掉了 Colab 预装的 {k} {before[k][0]}")
    if "lmcourse" not in added:
        failures.append("环境准备单元没有装上 lmcourse")
    for k in ("torch", "ipywidgets"):
        if k in before and k not in changed and k not in removed:
            log(f"  {k} {before[k][0]}：没被升级、没被重装（dist-info {before[k][1]} 的安装时间不变）")


def check_kernel(cell, failures):
    printed = "".join(o.get("text", "") for o in cell.outputs).strip()
    if Path(printed) != VENV / "bin" / "python":
        failures.append(f"内核用的不是彩排 venv 的 python：{printed!r}")


def check_outputs(path, cells, widget_state, failures):
    outputs = [(f"第 {i - 1} 个单元", o) for i, c in enumerate(cells) if c.cell_type == "code" for o in c.outputs]
    outputs += [(f"部件 {m}", o) for m, s in widget_state.items() for o in s.get("outputs", [])]
    bad = 0
    for where, o in outputs:
        text = text_of(o)
        for marker, pattern in MARKERS.items():
            if re.search(pattern, text):
                bad += 1
                failures.append(f"{path.name} {where} 的输出里有“{marker}”：{text[:300]!r}")
    log(f"  扫过 {len(outputs)} 个输出（单元和部件里的）：" + ("没有 " + "、".join(MARKERS) if not bad else f"{bad} 处问题"))


def probe_report(cell):
    for o in cell.outputs:
        for line in o.get("text", "").splitlines():
            if line.startswith("REHEARSAL "):
                return json.loads(line[len("REHEARSAL "):])
    return None


def check_font(cell, site, failures):
    report = probe_report(cell)
    if report is None:
        failures.append("字体检查单元没有输出结果")
        return
    log(f"  内核里的版本：{report['versions']}")
    if report["versions"]["ipywidgets"] != COLAB_INSTALL["ipywidgets"]:
        failures.append(f"内核里的 ipywidgets 是 {report['versions']['ipywidgets']}，不是 Colab 的 {COLAB_INSTALL['ipywidgets']}")
    if not report["versions"]["torch"].startswith(COLAB_INSTALL["torch"]):
        failures.append(f"内核里的 torch 是 {report['versions']['torch']}，不是预装的 {COLAB_INSTALL['torch']}")
    if not Path(report["lmcourse"]).is_relative_to(site):
        failures.append(f"lmcourse 不是从 venv 的 site-packages 导入的：{report['lmcourse']}")
    bundled = Path(report["bundled_font"])
    log(f"  font.family={report['font_family']}，font.sans-serif={report['sans_serif']}")
    log(f"  字体解析到 {report['font_file']}")
    if Path(report["font_file"]) != bundled or not bundled.is_relative_to(site) or not bundled.is_file():
        failures.append(f"matplotlib 的字体解析到 {report['font_file']}，不是随包安装的 {bundled}")


def check_widget_view(where, outputs, widget_state, failures):
    """where 的输出里要有部件视图，它是 anywidget 的模型，状态里带着前端模块和数据。"""
    views = [o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for o in outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    if not views:
        failures.append(f"{where} 的输出里没有部件视图")
    for view in views:
        state = widget_state.get(view, {})
        if state.get("_model_name") != "AnyModel" or "export default" not in state.get("_esm", "") \
                or not state.get("data"):
            failures.append(f"{where} 的部件 {view} 不是带前端模块和数据的 anywidget（{sorted(state)[:8]}）")
        else:
            log(f"  {where}：部件视图 {view}（{state.get('kind')}），前端模块 {len(state['_esm'])} 字节")


def check_widgets(path, chapter_cells, probe, widget_state, failures):
    cells = [c for c in chapter_cells if c.cell_type == "code"
             and any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in c.outputs)]
    if not cells:
        failures.append(f"{path.name} 里没有一个单元输出部件视图（交互图）")
    for c in cells:
        check_widget_view(f"{path.name} 的交互图单元 {c.source.splitlines()[-1][:50]!r}", c.outputs, widget_state,
                          failures)
    shown = [line.split()[1] for o in probe.outputs for line in o.get("text", "").splitlines()
             if line.startswith("WIDGET ")]
    if len(shown) != 4:
        failures.append(f"部件检查单元只建出了 {len(shown)} 个浏览器：{shown}")
    check_widget_view("部件检查单元", probe.outputs, widget_state, failures)


if __name__ == "__main__":
    main()
