"""postprocess_probabilities turns a model row into the digit, its confidence and all probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from app.pipeline.postprocess import postprocess_probabilities
from digits.errors import ModelError

pytestmark = pytest.mark.unit


def test_prediction_is_the_most_probable_digit():
    row = np.array([0.01, 0.02, 0.05, 0.02, 0.1, 0.0, 0.0, 0.7, 0.05, 0.05], dtype=np.float32)
    prediction = postprocess_probabilities(row)
    assert prediction.digit == 7
    assert prediction.confidence == pytest.approx(0.7)
    assert len(prediction.probabilities) == 10 and prediction.probabilities[4] == pytest.approx(0.1)
    assert all(isinstance(value, float) for value in prediction.probabilities)


def test_ties_go_to_the_smaller_digit():
    assert postprocess_probabilities(np.full(10, 0.1)).digit == 0


@pytest.mark.parametrize("row", [np.full(9, 0.1), np.full(11, 0.1), np.array([np.nan] + [0.1] * 9)])
def test_invalid_rows_are_model_errors(row):
    with pytest.raises(ModelError):
        postprocess_probabilities(row)
