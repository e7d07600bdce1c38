# 两条命令：make book（建环境、执行各章、生成网页）和 make test（建环境、跑全部测试）。
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHAPTERS := $(sort $(wildcard chapters/*.ipynb))

.PHONY: setup book html test bench checkpoints font clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

setup: $(STAMP)

# 执行每一章并把输出存回 .ipynb，然后生成 _build/html
book: setup
	$(BIN)/python tools/run_chapters.py --inplace $(CHAPTERS)
	$(MAKE) html

html: setup
	$(BIN)/jupyter-book build . -W --keep-going

# 全部测试：lmcourse 的 pytest、每章的 nbval、无警告的网页构建
test: setup
	$(BIN)/python tools/run_tests.py

bench: setup
	$(BIN)/python tools/run_chapters.py $(CHAPTERS)

checkpoints: setup
	$(BIN)/python -m lmcourse.ckpt all

font: setup
	$(BIN)/python tools/make_font.py

clean:
	rm -rf _build
