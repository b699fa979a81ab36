"""Training's per-epoch output: one line an epoch with its metrics in a fixed order and the learning
rate once, and nothing from Keras beside it."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tests.unit.training.tiny_keras import Batches, tiny_model
from training.progress import EpochLog, format_epoch_line

pytestmark = pytest.mark.unit


def test_an_epoch_line_gives_the_metrics_in_order_and_the_learning_rate_once():
    logs = {
        "val_accuracy": 0.98712,
        "learning_rate": 0.001,
        "loss": 0.12345,
        "val_loss": 0.0456,
        "accuracy": 0.9,
    }

    line = format_epoch_line(3, 40, logs, 0.001, 63.24)

    assert line == (
        "epoch 3/40: loss=0.1235 accuracy=0.9000 val_loss=0.0456 val_accuracy=0.9871 "
        "learning_rate=1.00e-03 time=63.2s"
    )


def test_fitting_logs_exactly_one_line_per_epoch_and_keras_prints_nothing(caplog, capsys):
    model = tiny_model()
    inputs = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    batches = Batches(inputs, np.eye(2, dtype="float32")[(inputs[:, 0] > 0).astype(int)], batch_size=8)

    with caplog.at_level(logging.INFO, logger="training.progress"):
        model.fit(batches, validation_data=batches, epochs=3, callbacks=[EpochLog()], verbose=0)

    lines = [record.getMessage() for record in caplog.records if record.name == "training.progress"]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all(line.count("learning_rate=") == 1 and "lr=" not in line for line in lines)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
