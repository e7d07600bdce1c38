"""make test 的内容：ruff（静态检查）→ pytest（lmcourse）→ nbval（每一章，本机的 CPU 内核和“第二种 CPU”的内核各一遍，两遍同时跑）
→ 无警告的 Jupyter Book 构建 → 搜索索引 → 浏览器测试（无头 Chromium 打开构建好的每一页、搜索每个术语；
Playwright 像读者一样操作交互图、数排好的公式，拦下一切第三方请求）及其两次演习（坏的加载器、CDN 脚本）
→ Colab 版笔记本（make colab-notebooks）→ Colab 彩排（只装 Colab 预装包的新 venv 里跑一章的 Colab 版）。

任何一步失败都以非零退出。pytest 在"没有测试"时的退出码 5 视为通过。
"""
import os
import subprocess
import sys
import time
from pathlib import Path

from second_cpu import describe, second_cpu_env

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NBVAL = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", "--nbval-cell-timeout", "600"]


def run(title, cmd, ok=(0,)):
    print(f"\n===== {title} =====\n$ {' '.join(map(str, cmd))}", flush=True)
    t = time.perf_counter()
    code = subprocess.call(cmd, cwd=ROOT)
    print(f"----- {title}：退出码 {code}，用时 {time.perf_counter() - t:.0f} 秒", flush=True)
    if code not in ok:
        sys.exit(code)


def main():
    if sys.argv[1:2] == ["--nbval-only"]:            # 只查几章：python tools/run_tests.py --nbval-only chapters/04_*.ipynb
        nbval_twice(sys.argv[2:])
        return
    chapters = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chapters").glob("*.ipynb"))
    run("ruff: 静态检查", [BIN / "ruff", "check", "lmcourse", "recipes", "tools", "tests"])
    run("pytest: lmcourse", [BIN / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], ok=(0, 5))
    if chapters:
        nbval_twice(chapters)
    run("jupyter-book build -W", [BIN / "jupyter-book", "build", ".", "-W", "--keep-going"])
    check_search_index()
    run("browser: 构建好的网页", [BIN / "python", "tools/browser_test.py", "--screenshots", "_build/screenshots"])
    for plant in ("broken-loader", "cdn"):                 # 演习：埋下的坏处，浏览器测试必须查得出来
        run(f"browser: 演习 {plant}", [BIN / "python", "tools/browser_test.py", "--plant", plant])
    run("colab-notebooks: Colab 版笔记本（不许留 MyST 标记）", [BIN / "python", "tools/colab_notebooks.py"])
    run("colab: Colab 彩排（执行 Colab 版笔记本）", [BIN / "python", "tools/colab_rehearsal.py"])


def nbval_twice(chapters):
    """每一章跑两遍 nbval：本机的内核，和 second_cpu.py 的“第二种 CPU”。各章多用 1 个线程，两遍在 2 核上同时跑。
    存下来的输出要两遍都对得上，才不依赖执行它的 CPU。"""
    runs = {"本机 CPU": dict(os.environ), "第二种 CPU": second_cpu_env(BIN / "python")}
    print(f"\n===== nbval: chapters（本机 CPU 与第二种 CPU：{describe(runs['第二种 CPU'])}）=====", flush=True)
    t = time.perf_counter()
    logs = ROOT / "_build" / "nbval"
    logs.mkdir(parents=True, exist_ok=True)
    procs = {}
    for name, env in runs.items():
        log = open(logs / f"{'native' if name == '本机 CPU' else 'second_cpu'}.log", "w")
        procs[name] = (subprocess.Popen([BIN / "python", *NBVAL, *chapters], cwd=ROOT, env=env,
                                        stdout=log, stderr=subprocess.STDOUT), log)
    failed = []
    for name, (proc, log) in procs.items():
        code = proc.wait()
        log.close()
        print(f"\n----- nbval（{name}）：退出码 {code}\n" + Path(log.name).read_text(encoding="utf-8")[-6000:], flush=True)
        failed += [name] if code else []
    print(f"----- nbval 两遍用时 {time.perf_counter() - t:.0f} 秒", flush=True)
    if failed:
        print(f"nbval 失败：{'、'.join(failed)}。只在第二种 CPU 上失败的单元，输出依赖 CPU：见 CONTRIBUTING.md 的“跨 CPU 的输出”。")
        sys.exit(1)


def check_search_index():
    """中文搜索要在构建时能导入 jieba，否则索引里一个中文词也没有：这里确认它真的有。"""
    import json
    import re

    text = (ROOT / "_build" / "html" / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    words = [w for w in list(index["terms"]) + list(index["titleterms"]) if re.search("[\u4e00-\u9fff]", w)]
    for word in ("链式法则", "齐夫", "困惑"):
        if word not in words:
            print(f"搜索索引里没有“{word}”：中文搜索坏了（{len(words)} 个中文词）")
            sys.exit(1)
    print(f"搜索索引：{len(words)} 个中文词，含“链式法则”“齐夫”“困惑”")


if __name__ == "__main__":
    main()
