# Two commands on a fresh machine:  `make serve` (the API with the shipped model) and `make test`.
# Each creates its own virtual environment in .venv (re-installed when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data
# Loopback only: `make serve` is for this machine. `make serve HOST=0.0.0.0` listens on every interface
# (the image's CMD does, inside its container). Not read from the environment, where some shells keep
# a HOST of their own.
HOST := 127.0.0.1
PORT ?= 8000

.PHONY: serve test test-fast lint train evaluate bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-cache-dir -e '.[train,dev]'
	touch $@

# `python -m app`: uvicorn with the settings' connection limits and a 20 s drain (app/server.py), as in
# the image, compose and Kubernetes.
serve: $(VENV)/.installed
	$(BIN)/python -m app --host $(HOST) --port $(PORT)

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash scripts/install-test-deps.sh
	bash scripts/install-browser.sh
	$(BIN)/pytest

test-fast: $(VENV)/.installed
	$(BIN)/pytest -m unit

lint: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The recipe of the shipped model (models/digits/7), from ../shared/data: the full MNIST training set,
# USPS train and CVL train (67 writers), pooled; 10 % validation, writer-disjoint for CVL; each test
# set held out; CVL's training images three times per epoch. Three runs on 2 CPU cores:
# 1. base: 28 epochs from random weights (one static augmented copy per image: elastic, dropout,
#    noise, stroke width, slant, low-resolution scan...; rotations/shifts/zooms per batch; lr 1e-3
#    halved on plateaus);
# 2. refine: 8 epochs from its weights at lr 2.5e-4 with fresh augmented copies (this was model 6;
#    1 and 2 took 83.5 minutes);
# 3. model: 4 epochs from its weights at lr 1.25e-4 with outlier exposure: 3 % more images, non-digits
#    (letters, symbols, scribbles, blots, textures, fragments and runs of digits) trained towards the
#    uniform distribution, so the model learns what is not one digit (17 minutes).
# Each run's final weights are chosen on the validation loss (best epoch or mean of the last epochs,
# with batch-norm statistics re-estimated on the un-augmented images; run 2's start too, not run 3's:
# it never saw a non-digit and would win on the digits' loss alone); the last run's model is
# calibrated on the validation digits and promoted as the next version of models/digits.
# (Model 6's two runs: git show 1f1e65b:Makefile; model 5's one run: git show
# 6ec86a8:Makefile; model 4's five runs: git show 911b6f6:Makefile.)
TRAIN_DATASETS := --dataset mnist=$(SHARED_DATA)/mnist --dataset usps=$(SHARED_DATA)/usps/usps.h5 \
	--dataset cvl=$(SHARED_DATA)/cvl --no-download --repeat cvl=3 --static-copies 1
TRAIN_RUNS_DIR ?= runs/recipe
# Flags for all three runs. On a CPU with bfloat16 instructions (AVX512-BF16 or AMX, as these machines
# have) they train in bfloat16 mixed precision: 84 min 13 s on 2 cores (2026-12-03) against 100 min
# 35 s in float32 (`make train TRAIN_FLAGS=`, how model 7 was trained); its model came out a little
# behind model 7 on validation (loss 0.0269 against 0.0265), so model 7 stays served (bench/RESULTS.md
# "The recipe in mixed precision"). Without those instructions bfloat16 is emulated, slower: float32.
HAS_BF16_CPU := $(shell grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo 2>/dev/null && echo yes)
TRAIN_FLAGS ?= $(if $(HAS_BF16_CPU),--mixed-precision,)
train: $(VENV)/.installed
	rm -rf $(TRAIN_RUNS_DIR)
	mkdir -p $(TRAIN_RUNS_DIR) && date +%s > $(TRAIN_RUNS_DIR)/started_at
	$(BIN)/python -m training.run $(TRAIN_DATASETS) $(TRAIN_FLAGS) --runs-dir $(TRAIN_RUNS_DIR) --run-name base \
		--epochs 28 --average-last-epochs 6
	$(BIN)/python -m training.run $(TRAIN_DATASETS) $(TRAIN_FLAGS) --runs-dir $(TRAIN_RUNS_DIR) --run-name refine \
		--initial-weights $(TRAIN_RUNS_DIR)/base/best.keras --augment-seed 7 --learning-rate 2.5e-4 \
		--epochs 8 --average-last-epochs 4
	$(BIN)/python -m training.run $(TRAIN_DATASETS) $(TRAIN_FLAGS) --runs-dir $(TRAIN_RUNS_DIR) --run-name model \
		--initial-weights $(TRAIN_RUNS_DIR)/refine/best.keras --no-keep-start-if-best \
		--outlier-fraction 0.03 --augment-seed 11 --learning-rate 1.25e-4 --epochs 4 \
		--average-last-epochs 3 --output-dir models/digits
	@# The recipe's wall time, printed and kept beside its runs (issue 11: at most 90 minutes).
	@seconds=$$(( $$(date +%s) - $$(cat $(TRAIN_RUNS_DIR)/started_at) )); \
		echo "make train: the three runs took $$((seconds / 60)) min $$((seconds % 60)) s wall" \
		| tee $(TRAIN_RUNS_DIR)/wall_time.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
