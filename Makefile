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

# The recipe of the shipped model (models/digits/5), from ../shared/data: the full MNIST training set,
# USPS train and CVL train (67 writers), pooled; 10 % validation, writer-disjoint for CVL; each test
# set held out. One run: 26 epochs, one static augmented copy per image (elastic, dropout, noise,
# stroke width, slant, low-resolution scan...), rotations/shifts/zooms per batch, lr 1e-3 halved on
# plateaus; the final weights are the mean of the last 6 epochs' (chosen on the validation loss, with
# batch-norm statistics re-estimated on the un-augmented images). 54 minutes on 2 CPU cores; then
# promoted as the next version of models/digits. (Model 4's five-run recipe: git show 911b6f6:Makefile.)
TRAIN_DATASETS := --dataset mnist=$(SHARED_DATA)/mnist --dataset usps=$(SHARED_DATA)/usps/usps.h5 \
	--dataset cvl=$(SHARED_DATA)/cvl --no-download
TRAIN_RUNS_DIR ?= runs/recipe
train: $(VENV)/.installed
	rm -rf $(TRAIN_RUNS_DIR)
	$(BIN)/python -m training.run $(TRAIN_DATASETS) --runs-dir $(TRAIN_RUNS_DIR) --run-name model \
		--epochs 26 --static-copies 1 --average-last-epochs 6 --output-dir models/digits

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
