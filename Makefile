# The two set-up commands of the README are `make figures` and `make test`; each installs what it needs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel of torch by default (on a CUDA machine: make install TORCH="torch")
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install figures screenshot smoke test test-all bench checkpoint checkpoint-tiny checkpoint-gpu gpu-check evidence study clean-figures

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Regenerate every figure of every notebook (embedded default: shipped checkpoint + tuxphoto, CPU), then the
## README's generated blocks and the results site figures/site/ (scripts.report)
figures: $(STAMP)
	$(BIN)/python -m scripts.notebooks
	$(BIN)/python -m scripts.report

## The committed screenshot of the explorer widget: notebook 07 on the default checkpoint in JupyterLab, driven by
## headless Chromium (needs .ci/install-browser.sh; a few minutes on a CPU)
screenshot: $(STAMP)
	bash .ci/install-browser.sh $(BIN)/pip
	$(BIN)/python -m scripts.screenshot

## Every notebook in SMOKE mode (seconds each, tiny model)
smoke: $(STAMP)
	$(BIN)/python -m scripts.notebooks --smoke --rendered /tmp/smoke-rendered --figures /tmp/smoke-figures

test: $(STAMP)
	bash .ci/install-browser.sh $(BIN)/pip || echo "no chromium: the browser test will be skipped"
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

bench: $(STAMP)
	$(BIN)/python -m scripts.bench

## Retrain the shipped default checkpoint from scratch with the recorded command, then write its card
checkpoint: $(STAMP)
	rm -rf runs/tux32
	$(BIN)/python -m scripts.train --config configs/tux32.json
	$(BIN)/python -m scripts.ship runs/tux32 --name tux32 --force

checkpoint-tiny: $(STAMP)
	rm -rf runs/tiny16
	$(BIN)/python -m scripts.train --config configs/tiny16.json
	$(BIN)/python -m scripts.ship runs/tiny16 --name tiny16 --force

## On a GPU: the paper-size network at 64x64 on tuxphoto for about 8 minutes with bf16
checkpoint-gpu: $(STAMP)
	$(BIN)/python -m scripts.train --config configs/paper64-gpu.json
	$(BIN)/python -m scripts.ship runs/paper64 --name paper64 --force

## On a GPU: train / extract / k-means throughput check (about 8 min); `python -m scripts.gpu_check --quick` on a CPU
gpu-check: $(STAMP)
	$(BIN)/python -m scripts.gpu_check

evidence: $(STAMP)
	$(BIN)/python -m scripts.evidence

## The factor study of configs/study.json (hours on a CPU; resumable: rerun after an interruption), then its
## table and curves in figures/evidence/
study: $(STAMP)
	$(BIN)/python -m scripts.study run
	$(BIN)/python -m scripts.study summary

clean-figures:
	rm -rf figures/rendered
