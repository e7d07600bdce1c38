"""make test 的内容：pytest（lmcourse）→ nbval（每一章）→ 无警告的 Jupyter Book 构建。

任何一步失败都以非零退出。pytest 在"没有测试"时的退出码 5 视为通过。
"""
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(title, cmd, ok=(0,)):
    print(f"\n===== {title} =====\n$ {' '.join(map(str, cmd))}", flush=True)
    t = time.perf_counter()
    code = subprocess.call(cmd, cwd=ROOT)
    print(f"----- {title}：退出码 {code}，用时 {time.perf_counter() - t:.0f} 秒", flush=True)
    if code not in ok:
        sys.exit(code)


def main():
    chapters = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chapters").glob("*.ipynb"))
    run("pytest: lmcourse", [BIN / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], ok=(0, 5))
    if chapters:
        run("nbval: chapters", [BIN / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
                                "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
                                "--nbval-cell-timeout", "600",
                                *chapters], ok=(0,))
    run("jupyter-book build -W", [BIN / "jupyter-book", "build", ".", "-W", "--keep-going"])


if __name__ == "__main__":
    main()
