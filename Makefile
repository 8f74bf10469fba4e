# dedup-audit: setup, demo, tests. Everything installs from the project's own files.
#
#   make demo   set up .venv, scan + clean the bundled sample data, write reports to out/
#   make test   set up .venv (+ a headless Chrome/Chromium where none is), run the whole suite
#   make test-fast   the suite without the slow (real-model and browser) tests, about a minute
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

.PHONY: setup demo test test-fast lint browser clean-out

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py dedup_audit/engine/_native.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/torch-pin.txt
	$(BIN)/python -m pip install -q -c $(VENV)/torch-pin.txt -e ".[dev]"
	touch $@

# A Chrome/Chromium already on the machine is used (tests/browser.py finds it: $CHROME_BIN,
# PATH, the usual install folders). Only where none is found and apt is the platform's package
# tool are Debian's chromium + chromedriver installed (without recommended extras).
browser: setup
	@$(BIN)/python tests/browser.py --check || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	      --no-install-recommends --no-upgrade chromium chromium-driver; \
	  else \
	    echo "No Chrome/Chromium found: install Google Chrome (or Chromium and chromedriver)," \
	         "or set CHROME_BIN/CHROMEDRIVER; then run make test again"; exit 1; \
	  fi; }

demo: setup
	rm -rf $(OUT)/scan $(OUT)/clean $(OUT)/memorization
	$(BIN)/dedup-audit scan sample_data/alpaca_en_demo.json -o $(OUT)/scan
	$(BIN)/dedup-audit clean sample_data/alpaca_en_demo.json -o $(OUT)/clean/alpaca_en_demo.json --report-dir $(OUT)/clean
	$(BIN)/dedup-audit report sample_data/run --data sample_data/run/train.json --losses sample_data/run/losses.jsonl -o $(OUT)/memorization
	@echo "Reports: $(OUT)/scan/report.html, $(OUT)/clean/report.html, $(OUT)/memorization/report.html"
	@echo "Put dedup-audit on your PATH with: source $(VENV)/bin/activate"

test: setup browser
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check dedup_audit tests benchmarks
	$(BIN)/ruff format --check dedup_audit tests benchmarks
	$(BIN)/mypy
