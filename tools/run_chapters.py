"""逐章执行 notebook，打印每章的墙钟时间、最慢的几个单元和内核进程的峰值内存。

用法：python tools/run_chapters.py [--inplace] [--record book/bench_chapters.json] chapters/*.ipynb
--inplace 时把执行结果（输出）写回文件（make execute 用）；否则只计时（make bench 用）。
--record 把每章的秒数写进一个 JSON（“如何使用本书”的用时表由 tests/test_package.py 对照它检查）。
预算：空闲的 2 核机器上每章 ≤ 60 秒、全书 ≤ 10 分钟；超出时标出来并以 1 退出。
单个单元超过 CELL_TIMEOUT 秒就停下并报错，不会干等。
"""
import argparse
import re
import asyncio
import sys
import time
from pathlib import Path

import nbclient
import nbformat
from jupyter_core.utils import ensure_async

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_BUDGET, BOOK_BUDGET, CELL_TIMEOUT = 60, 600, 600


class Client(nbclient.NotebookClient):
    """nbclient 等 execute_reply 时只调用一次 get_msg(timeout=整个单元的时限)。遇到部件单元，内核早已回复、
    空闲了，这次等待却偶尔不被唤醒，一直等到超时（jupyter/nbclient#312）。这里改成每秒取一次，回复一到就能拿到。"""

    async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
        from queue import Empty

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=1))
            except Empty:
                if deadline is not None and time.monotonic() > deadline:
                    task_poll_kernel_alive.cancel()
                    await self._async_check_alive()
                    await self._async_handle_timeout(timeout, cell)      # 抛出 CellTimeoutError
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                try:
                    await asyncio.wait_for(task_poll_output_msg, self.iopub_timeout)
                except (asyncio.TimeoutError, Empty):
                    pass
                task_poll_kernel_alive.cancel()
                return msg


def is_progress_bar(output):
    """tqdm 的进度条（部件或 stderr 文本）：存下来只会是一个不动的“0%”，所以不写回文件，只在运行时看。"""
    text = "".join(output.get("data", {}).get("text/plain", "")) + "".join(output.get("text", ""))
    return re.search(r"\d+%\|", text) is not None and (
        "application/vnd.jupyter.widget-view+json" in output.get("data", {}) or output.get("name") == "stderr")


def page_only(output):
    """交互图的输出只存给网页用的 text/html（lmc_loader.js 挂载它）：部件视图的 model_id 离开内核就失效，
    存下来在网页上是空白。在 Jupyter 里重新运行这个单元，显示的仍是活的部件。"""
    data = output.get("data", {})
    if "application/vnd.jupyter.widget-view+json" in data and 'class="lmc-explorer"' in "".join(data.get("text/html", "")):
        output["data"] = {k: v for k, v in data.items() if k != "application/vnd.jupyter.widget-view+json"}
    return output


def execute(path, inplace):
    nb = nbformat.read(path, as_version=4)
    # 不存部件状态：交互图的数据已在单元输出的 text/html 里（网页用它），进度条的状态没有用
    client = Client(nb, timeout=CELL_TIMEOUT, kernel_name="python3", store_widget_state=False,
                    resources={"metadata": {"path": str(path.parent)}})
    t = time.perf_counter()
    cells = []
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        for index, cell in enumerate(nb.cells):
            c = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except nbclient.exceptions.CellTimeoutError:
                sys.exit(f"{path.name} 第 {index} 个单元 {CELL_TIMEOUT} 秒没有结束：卡住了，停下。单元开头：\n"
                         + "".join(cell.source)[:200])
            cells.append((time.perf_counter() - c, index))
        peak = _peak_rss_mb(pid)
    seconds = time.perf_counter() - t
    if inplace:
        nb.metadata.pop("widgets", None)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [page_only(o) for o in cell.outputs if not is_progress_bar(o)]
        nbformat.write(nb, path)
    return seconds, peak, sorted(cells, reverse=True)[:3]


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
    parser.add_argument("--record", type=Path, help="把每章的用时写进这个 JSON 文件")
    parser.add_argument("chapters", nargs="*")
    args = parser.parse_args()
    paths = [Path(p) for p in args.chapters] or sorted((ROOT / "chapters").glob("*.ipynb"))
    rows, total = [], 0.0
    for p in paths:
        seconds, peak, slow = execute(p, args.inplace)
        total += seconds
        rows.append((p.name, seconds, peak))
        print(f"{p.name}: {seconds:.1f} s, 峰值内存 {peak:.0f} MB；最慢的单元 "
              + "，".join(f"#{i} {t:.1f} s" for t, i in slow), flush=True)
    print("\n| 章节 | 墙钟时间 (s) | 峰值内存 (MB) |\n|---|---:|---:|")
    over = []
    for name, seconds, peak in rows:
        flag = f" **超出 {CHAPTER_BUDGET} 秒**" if seconds > CHAPTER_BUDGET else ""
        print(f"| {name} | {seconds:.1f}{flag} | {peak:.0f} |")
        over += [name] if flag else []
    if args.record:
        import json
        import os
        record = {"machine": f"{os.cpu_count()} 核 CPU，{time.strftime('%Y-%m-%d')}",
                  "seconds": {name.removesuffix(".ipynb"): round(seconds, 1) for name, seconds, _ in rows},
                  "total": round(total, 1)}
        args.record.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"| 合计 | {total:.1f}{' **超出 10 分钟**' if total > BOOK_BUDGET else ''} | |")
    if over or total > BOOK_BUDGET:
        print(f"超出预算（空闲机器上每章 {CHAPTER_BUDGET} 秒、全书 {BOOK_BUDGET} 秒）：{', '.join(over) or '全书'}")
        sys.exit(1)


if __name__ == "__main__":
    main()
