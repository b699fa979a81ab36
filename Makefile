# Two commands on a fresh machine:  `make serve` (the API with the shipped model) and `make test`.
# Each creates its own virtual environment in .venv (re-installed when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data
HOST ?= 0.0.0.0
PORT ?= 8000

.PHONY: serve test test-fast lint train evaluate bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $@

serve: $(VENV)/.installed
	$(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT) --timeout-graceful-shutdown 20

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash scripts/install-test-deps.sh
	$(BIN)/pytest

test-fast: $(VENV)/.installed
	$(BIN)/pytest -m unit

lint: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The recipe of the shipped model, from ../shared/data (10k of MNIST train + USPS train; each test
# set held out): 40 epochs from scratch, then 20 epochs of fine-tuning with two more augmented copies
# per image at the learning rate the first run ended with. The base model goes to runs/, the
# fine-tuned one becomes the next version in models/digits.
TRAIN_DATASETS := --dataset mnist=$(SHARED_DATA)/mnist-train-10k:$(SHARED_DATA)/mnist \
	--dataset usps=$(SHARED_DATA)/usps/usps.h5 --no-download
TRAIN_RUNS_DIR ?= runs/recipe
train: $(VENV)/.installed
	rm -rf $(TRAIN_RUNS_DIR)
	$(BIN)/python -m training.run $(TRAIN_DATASETS) --output-dir $(TRAIN_RUNS_DIR)/base \
		--runs-dir $(TRAIN_RUNS_DIR) --version 1 --epochs 40 --static-copies 2
	$(BIN)/python -m training.run $(TRAIN_DATASETS) --output-dir models/digits \
		--runs-dir $(TRAIN_RUNS_DIR) --initial-weights $(TRAIN_RUNS_DIR)/base-1/best.keras \
		--learning-rate 2.5e-4 --epochs 20 --static-copies 4

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
