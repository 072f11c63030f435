# The two set-up commands of the README are `make figures` and `make test`; each installs what it needs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel of torch by default (on a CUDA machine: make install TORCH="torch")
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install data-cifar10 figures figures-cifar10 check-figures study-cifar10 screenshot smoke test test-all bench checkpoint checkpoint-tiny checkpoint-gpu gpu-check evidence study clean-figures clean-cache

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# CIFAR-10 (optional): CIFAR10=<folder of class sub-folders>, or CIFAR10=cifar10:<dir of the python batches>
CIFAR10 ?=
CIFAR10_SPEC = $(if $(findstring :,$(CIFAR10)),$(CIFAR10),folder:$(CIFAR10))
CIFAR10_RUNS = cifar32 cifar32-lrdrop cifar32-lowlr cifar32-lowlr-seed1 cifar32-lr2e-4 cifar32-lr5e-5 cifar32-warmup cifar32-uniform cifar32-loguniform cifar32-sigma3 cifar32-authorsgain \
	cifar32-nobias cifar32-bfbn

## Your own copy of CIFAR-10: download the official python archive (about 163 MB), check its MD5, unpack it into
## data/cifar-10-batches-py (git-ignored) and print the CIFAR10= value for `make figures`. Without network: download
## it by hand and give ARCHIVE=<path of cifar-10-python.tar.gz>. A complete copy already there is kept
ARCHIVE ?=
data-cifar10: $(STAMP)
	$(BIN)/python -m scripts.data cifar10 $(if $(ARCHIVE),--archive "$(ARCHIVE)")

## Regenerate every figure of every notebook (embedded default: shipped checkpoint + tuxphoto, CPU), then the
## README's generated blocks and the results site figures/site/ (scripts.report). JOBS=N: N notebooks at once (default
## 2: one thread each on 2 cores, 1.65x faster than one at a time, measured). With CIFAR10=<folder> also
## the notebooks on the shipped CIFAR-10 checkpoint into figures/cifar10/ (skipped, with a message, without it)
JOBS ?= 2
figures: $(STAMP)
	$(BIN)/python -m scripts.notebooks --jobs $(JOBS)
	$(BIN)/python -m scripts.report
	@$(MAKE) --no-print-directory figures-cifar10

figures-cifar10: $(STAMP)
	@if [ -z "$(CIFAR10)" ]; then \
	  echo "figures: CIFAR10 is not set: skipped the CIFAR-10 notebooks (figures/cifar10/). Give CIFAR10=<folder of class sub-folders> or CIFAR10=cifar10:<python batches dir>."; \
	else \
	  $(BIN)/python -m scripts.notebooks --jobs $(JOBS) -p CHECKPOINT data/checkpoints/cifar32 -p DATASET "$(CIFAR10_SPEC)" \
	    --figures figures/cifar10 --rendered figures/cifar10/rendered; \
	fi

## After `make figures` (CI runs it): every regenerated figures/**/numbers.json against the committed one (git HEAD),
## key by key within the tolerances of lib/notebook/tolerances.py; exits 1 naming each notebook/key that moved too
## far (old value, new value, tolerance) or a committed numbers.json the run did not write. Reads only
check-figures: $(STAMP)
	$(BIN)/python -m scripts.check_figures

## The committed screenshot of the explorer widget: notebook 07 on the default checkpoint in JupyterLab, driven by
## headless Chromium (needs .ci/install-browser.sh; a few minutes on a CPU)
screenshot: $(STAMP)
	bash .ci/install-browser.sh $(BIN)/pip
	$(BIN)/python -m scripts.screenshot

## Every notebook in SMOKE mode (seconds each, tiny model)
smoke: $(STAMP)
	$(BIN)/python -m scripts.notebooks --smoke --rendered /tmp/smoke-rendered --figures /tmp/smoke-figures

## House style by tools: ruff (pyproject.toml [tool.ruff]) first, so a lint error fails the target before the tests
test: $(STAMP)
	$(BIN)/ruff check lib scripts tests
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

## The CIFAR-10 runs (configs/cifar32*.json: the baseline to 2M images, one factor each to 500k; days on a
## CPU, resumable: rerun after an interruption), then their learning curves in figures/cifar10/curves/ and
## which blocks each run's last model routes the image through (figures/cifar10/reliance/).
## Needs CIFAR10=<folder of class sub-folders> (linked as data/cifar10-train, which the configs read).
study-cifar10: $(STAMP)
	@test -n "$(CIFAR10)" || { echo "study-cifar10: set CIFAR10=<folder of CIFAR-10 class sub-folders>"; exit 2; }
	@test -e data/cifar10-train || ln -s "$(abspath $(CIFAR10))" data/cifar10-train
	for c in $(CIFAR10_RUNS); do $(BIN)/python -m scripts.train --config configs/$$c.json || exit 1; done
	$(BIN)/python -m scripts.curves $(addprefix runs/,$(CIFAR10_RUNS)) --out figures/cifar10/curves --dataset folder:data/cifar10-train
	$(BIN)/python -m scripts.reliance data/checkpoints/tux32 --dataset tuxphoto --out figures/cifar10/reliance
	$(BIN)/python -m scripts.reliance $(addsuffix /model,$(addprefix runs/,$(CIFAR10_RUNS))) --dataset folder:data/cifar10-train --out figures/cifar10/reliance

## One more leg of the shipped CIFAR-10 run, on any machine (lib.training.lineage): continue
## data/checkpoints/cifar32 with its recipe (configs/cifar32-lowlr.json); stop it any time (resumable: rerun), then
## `make ship-cifar10` ships the run back as cifar32 with its card, lineage and class readout.
continue-cifar10: $(STAMP)
	@test -n "$(CIFAR10)" || { echo "continue-cifar10: set CIFAR10=<folder of CIFAR-10 class sub-folders>"; exit 2; }
	@test -e data/cifar10-train || ln -s "$(abspath $(CIFAR10))" data/cifar10-train
	$(BIN)/python -m scripts.train --config configs/cifar32-lowlr.json --continue data/checkpoints/cifar32 --compile true

ship-cifar10: $(STAMP)
	$(BIN)/python -m scripts.ship runs/cifar32-lowlr --name cifar32 --force --readout --retrain "make continue-cifar10 CIFAR10=<folder>"

clean-figures:
	rm -rf figures/rendered

## Remove the content-keyed cache of phi, probe fits and samples (lib.core.memo; LIB_CACHE=off turns it off)
clean-cache:
	rm -rf data/cache/memo $(if $(LIB_CACHE),"$(LIB_CACHE)")
