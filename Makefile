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

# The recipe of the shipped model (models/digits/4), from ../shared/data (10k of MNIST train + USPS
# train; each test set held out), in five runs; every choice below is made on the validation loss:
#   base       40 epochs from scratch, 2 augmented copies per image, lr 1e-3 (ReduceLROnPlateau);
#   finetune   7 epochs from base's best, 4 copies, lr 2.5e-4 (the rate base ended with);
#   refine     10 epochs from finetune's best, lr 1.25e-4, averaging the last 8 epochs' weights
#              (adopted only if that lowers the validation loss);
#   final      8 epochs from refine's best with a fresh augmentation seed, 3 copies, lr 1e-4,
#              averaging the last 6 (adopted only if better);
#   soup       the mean of final's and refine's weights, batch-norm statistics re-estimated on the
#              un-augmented training images, then 2 epochs at lr 2.5e-5 that it keeps only if they
#              validate better (they did not) -> the next version in models/digits.
# Each run also re-estimates its batch-norm statistics on un-augmented images when that validates
# better. About 2.5 hours on 2 CPU cores; each model card embeds the cards of the runs it started
# from (the shipped runs up to final ran before that re-estimation existed: see their cards' commits).
TRAIN_DATASETS := --dataset mnist=$(SHARED_DATA)/mnist-train-10k:$(SHARED_DATA)/mnist \
	--dataset usps=$(SHARED_DATA)/usps/usps.h5 --no-download
TRAIN_RUNS_DIR ?= runs/recipe
# Model 4 predates the style augmentations (stroke width, slant, low-resolution scan), and the
# validation split is now drawn per source: a rerun gives a close model, not the same one.
TRAIN := $(BIN)/python -m training.run $(TRAIN_DATASETS) --runs-dir $(TRAIN_RUNS_DIR) \
	--no-stroke-width --no-slant --no-low-resolution-scan
train: $(VENV)/.installed
	rm -rf $(TRAIN_RUNS_DIR)
	$(TRAIN) --run-name base --epochs 40 --static-copies 2
	$(TRAIN) --run-name finetune --initial-weights $(TRAIN_RUNS_DIR)/base/best.keras \
		--learning-rate 2.5e-4 --epochs 7 --static-copies 4
	$(TRAIN) --run-name refine --initial-weights $(TRAIN_RUNS_DIR)/finetune/best.keras \
		--learning-rate 1.25e-4 --epochs 10 --static-copies 4 --average-last-epochs 8
	$(TRAIN) --run-name final --initial-weights $(TRAIN_RUNS_DIR)/refine/best.keras \
		--learning-rate 1e-4 --epochs 8 --static-copies 3 --average-last-epochs 6 --augment-seed 7
	$(TRAIN) --run-name soup --output-dir models/digits --initial-weights $(TRAIN_RUNS_DIR)/final/best.keras \
		--initial-weights $(TRAIN_RUNS_DIR)/refine/best.keras \
		--learning-rate 2.5e-5 --epochs 2 --static-copies 1 --augment-seed 13

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
