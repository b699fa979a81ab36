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
	bash scripts/install-browser.sh
	$(BIN)/pytest

test-fast: $(VENV)/.installed
	$(BIN)/pytest -m unit

lint: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The recipe of the shipped model, from ../shared/data (10k of MNIST train + USPS train; each test
# set held out), in three runs: 40 epochs from scratch; 7 epochs of fine-tuning with two more augmented
# copies per image at the learning rate the first run ended with; 10 more at half that rate, averaging
# the weights of the last 8 epochs (adopted only if that lowers the validation loss). The first two
# runs' models stay in runs/; the last becomes the next version in models/digits.
TRAIN_DATASETS := --dataset mnist=$(SHARED_DATA)/mnist-train-10k:$(SHARED_DATA)/mnist \
	--dataset usps=$(SHARED_DATA)/usps/usps.h5 --no-download
TRAIN_RUNS_DIR ?= runs/recipe
train: $(VENV)/.installed
	rm -rf $(TRAIN_RUNS_DIR)
	$(BIN)/python -m training.run $(TRAIN_DATASETS) --output-dir $(TRAIN_RUNS_DIR)/base \
		--runs-dir $(TRAIN_RUNS_DIR) --version 1 --epochs 40 --static-copies 2
	$(BIN)/python -m training.run $(TRAIN_DATASETS) --output-dir $(TRAIN_RUNS_DIR)/finetune \
		--runs-dir $(TRAIN_RUNS_DIR) --version 1 --initial-weights $(TRAIN_RUNS_DIR)/base-1/best.keras \
		--learning-rate 2.5e-4 --epochs 7 --static-copies 4
	$(BIN)/python -m training.run $(TRAIN_DATASETS) --output-dir models/digits \
		--runs-dir $(TRAIN_RUNS_DIR) --initial-weights $(TRAIN_RUNS_DIR)/finetune-1/best.keras \
		--learning-rate 1.25e-4 --epochs 10 --static-copies 4 --average-last-epochs 8

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
