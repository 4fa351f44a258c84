# The front door: every target sets up .venv itself on a fresh machine.
#   make train-<project> ARGS="--epochs 3"     make test     make help
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# TensorFlow's CUDA build where a GPU answers, the (much smaller) CPU wheel elsewhere.
TF_EXTRA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
STAMP  := $(VENV)/.installed-$(TF_EXTRA)
PROJECTS := $(notdir $(patsubst %/,%,$(dir $(wildcard projects/*/__main__.py))))
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv browser test lint bench bench-serve serve clean

help: ## list the targets
	@grep -hE '^[a-zA-Z%_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'
	@echo "  projects:          $(PROJECTS)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' || \
	  { echo "Python 3.10-3.12 is needed; found $$($(PYTHON) --version 2>&1). Try: make PYTHON=python3.11"; exit 1; }
	@# a .venv whose pip is broken (e.g. made where ensurepip is missing) is made again
	$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -e ".[$(TF_EXTRA),dev]"
	touch $@

venv: $(STAMP) ## create .venv and install the project (CPU or GPU TensorFlow)

train-%: $(STAMP) ## train a project: make train-mnist_cnn ARGS="--epochs 3"
	$(PY) -m projects.$* train $(ARGS)

tune-%: $(STAMP) ## keras-tuner search: make tune-mnist_cnn ARGS="--max-trials 10"
	$(PY) -m projects.$* tune $(ARGS)

evaluate-%: $(STAMP) ## re-evaluate a run (default runs/<project>/latest)
	$(PY) -m projects.$* evaluate $(ARGS)

export-%: $(STAMP) ## export a run's SavedModel and check it in a fresh process
	$(PY) -m projects.$* export $(ARGS)

predict-%: $(STAMP) ## a project's predict: make predict-churn_ann ARGS="runs/churn_ann/latest customers.csv"
	$(PY) -m projects.$* predict $(ARGS)

seeds-%: $(STAMP) ## train over N seeds, mean and spread: make seeds-churn_ann ARGS="--n 5"
	$(PY) -m projects.$* seeds $(ARGS)

compare-%: $(STAMP) ## a project's model comparison: make compare-imdb_gru ARGS="--epochs 2"
	$(PY) -m projects.$* compare $(ARGS)

run-%: $(STAMP) ## any other project command: make run-autoencoder_anomaly ARGS="category realKnownCause"
	$(PY) -m projects.$* $(ARGS)

# the page tests drive Debian's headless chromium through its chromedriver: installed here when missing
# (never a browser download)
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMEDRIVER):
	@command -v apt-get >/dev/null || { echo "the page tests need chromium and its chromedriver at \
	/usr/bin (Debian: apt-get install chromium chromium-driver)"; exit 1; }
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver

browser: $(CHROMEDRIVER) ## install Debian's chromium and chromium-driver for the page tests

# two test processes: much of a test's time is one Python thread (imports, tracing, a subprocess starting),
# so two of them keep 2 cores busy; a test file stays in one process (--dist loadfile) with its fixtures
TEST_WORKERS ?= 2
test: $(STAMP) $(CHROMEDRIVER) ## the whole test suite: no network, no dataset mirror (TEST_WORKERS=0: one process)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP) ## every project against its reference, then serving (needs the real data): ARGS="--quick"
	$(PY) -m benchmarks $(ARGS)

bench-serve: $(STAMP) ## the model server under load, batching off and on (needs mnist_cnn and imdb_gru runs)
	$(PY) -m benchmarks.serving $(ARGS)

serve: $(STAMP) ## serve runs/<name>/latest of every trained project on 127.0.0.1:8501 (ARGS="--batch-max-size 32")
	$(PY) -m shared.serving --runs runs $(ARGS)

clean: ## remove caches (keeps .venv and runs/)
	rm -rf .pytest_cache .ruff_cache build *.egg-info
