# dedup-audit: setup, demo, tests. Everything installs from the project's own files.
#
#   make demo   set up .venv, scan + clean the bundled sample data, write reports to out/
#   make test   set up .venv (+ headless Chromium for the HTML-report test), run the whole suite
#
# torch: TORCH_SPEC is installed first. torch==2.13.0 resolves to the local CPU wheel on this
# kind of machine (pip find-links); elsewhere it is PyPI's default build. A CPU-only machine
# elsewhere can ask for the CPU build explicitly, e.g.
#   make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
# The installed torch is then pinned, so no dependency can pull a multi-GB CUDA build over it.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
OUT ?= out
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint browser clean-out

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/torch-pin.txt
	$(BIN)/python -m pip install -q -c $(VENV)/torch-pin.txt -e ".[dev]"
	touch $@

browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; }

demo: setup
	rm -rf $(OUT)/scan $(OUT)/clean $(OUT)/memorization
	$(BIN)/dedup-audit scan sample_data/alpaca_en_demo.json -o $(OUT)/scan
	$(BIN)/dedup-audit clean sample_data/alpaca_en_demo.json -o $(OUT)/clean/alpaca_en_demo.json --report-dir $(OUT)/clean
	$(BIN)/dedup-audit report sample_data/run --data sample_data/run/train.json --losses sample_data/run/losses.jsonl -o $(OUT)/memorization
	@echo "Reports: $(OUT)/scan/report.md, $(OUT)/clean/, $(OUT)/memorization/report.html"

test: setup browser
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check dedup_audit tests benchmarks
	$(BIN)/ruff format --check dedup_audit tests benchmarks
	$(BIN)/mypy
