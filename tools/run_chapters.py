"""逐章执行 notebook，打印每章的墙钟时间和内核进程的峰值内存。

用法：python tools/run_chapters.py [--inplace] chapters/*.ipynb
--inplace 时把执行结果（输出）写回文件（make book 用）；否则只计时（make bench 用）。
"""
import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]


def execute(path, inplace):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    t = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        peak = _peak_rss_mb(pid)
    seconds = time.perf_counter() - t
    if inplace:
        nbformat.write(nb, path)
    return seconds, peak


def _peak_rss_mb(pid):
    """从 /proc 读内核进程的峰值常驻内存（VmHWM）。"""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--inplace", action="store_true")
    parser.add_argument("chapters", nargs="*")
    args = parser.parse_args()
    paths = [Path(p) for p in args.chapters] or sorted((ROOT / "chapters").glob("*.ipynb"))
    rows, total = [], 0.0
    for p in paths:
        seconds, peak = execute(p, args.inplace)
        total += seconds
        rows.append((p.name, seconds, peak))
        print(f"{p.name}: {seconds:.1f} s, 峰值内存 {peak:.0f} MB", flush=True)
    print("\n| 章节 | 墙钟时间 (s) | 峰值内存 (MB) |\n|---|---:|---:|")
    for name, seconds, peak in rows:
        print(f"| {name} | {seconds:.1f} | {peak:.0f} |")
    print(f"| 合计 | {total:.1f} | |")


if __name__ == "__main__":
    main()
