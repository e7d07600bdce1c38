# 两条命令：make book（建环境、用存好的输出生成网页，不到一分钟）和 make test（建环境、跑全部测试）。
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHAPTERS := $(sort $(wildcard chapters/*.ipynb))

.PHONY: setup book html execute test browser-setup browser colab colab-notebooks bench bench-pretrain bench-hf smoke checkpoints font clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

setup: $(STAMP)

# 用各章存好的输出生成 _build/html（不重新执行，不改动 chapters/ 里的文件）
book: html

html: setup
	$(BIN)/jupyter-book build . -W --keep-going

# 重新执行每一章并把输出存回 .ipynb（作者改了章节或检查点之后用），然后生成网页
execute: setup
	$(BIN)/python tools/run_chapters.py --inplace $(CHAPTERS)
	$(MAKE) html

# 全部测试：lmcourse 的 pytest、每章的 nbval、无警告的网页构建、浏览器测试、Colab 彩排。
# 先装好浏览器测试要的 Chromium 和中文字体（已装时跳过；装不了时立刻停下，什么也不跑）
test: browser-setup setup
	$(BIN)/python tools/run_tests.py

browser-setup:
	@bash tools/install_browser.sh

# 只跑浏览器测试（先 make html）；截图存到 _build/screenshots
browser: setup
	$(BIN)/python tools/browser_test.py --screenshots _build/screenshots

# 只跑 Colab 彩排：只装 Colab 预装包的新 venv 里，跑一章自己的环境准备单元，再执行这一章
colab: setup
	$(BIN)/python tools/colab_rehearsal.py

# Colab 版笔记本：MyST 换成普通 Markdown（引用、公式编号、折叠的答案），写到 _build/colab/chapters
colab-notebooks: setup
	$(BIN)/python tools/colab_notebooks.py --out _build/colab

# 逐章计时（空闲机器上每章 ≤ 60 秒、全书 ≤ 10 分钟），结果写进 book/bench_chapters.json
bench: setup
	$(BIN)/python tools/run_chapters.py --record book/bench_chapters.json $(CHAPTERS)

# 附录里的吞吐量（旧 / 新训练步、1 / 2 个进程、fp32 / bf16），写进 book/bench_pretrain.json（测试核对附录与它一致）
bench-pretrain: setup
	$(BIN)/python tools/bench_pretrain.py

# 本包的训练步、生成与 Hugging Face 同尺寸模型交替比速度，另算 BERT 一步的算力利用率（只打印）
bench-hf: setup
	$(BIN)/python tools/bench_hf.py

# 上 GPU 之前的冒烟测试：每行 PASS 或 FAIL（多卡机器上：make smoke PROCS=8）
smoke: setup
	$(BIN)/python tools/gpu_smoke.py $(if $(PROCS),--procs $(PROCS))

checkpoints: setup
	$(BIN)/python -m lmcourse.ckpt all

font: setup
	$(BIN)/python tools/make_font.py

clean:
	rm -rf _build
