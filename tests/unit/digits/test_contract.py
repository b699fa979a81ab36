"""The model contract: a canonical uint8 digit becomes the model's float32 input one way, everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from digits.contract import IMAGE_SHAPE, NUM_CLASSES, to_model_input, to_model_inputs

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def mnist_digits(mnist_test_samples) -> np.ndarray:
    return mnist_test_samples[0][:16]


def test_the_model_reads_one_grey_28x28_channel_and_answers_ten_digits():
    assert IMAGE_SHAPE == (28, 28, 1)
    assert NUM_CLASSES == 10


def test_to_model_input_gives_a_28x28x1_float32_image_in_0_to_1(mnist_digits):
    model_input = to_model_input(mnist_digits[0])
    assert model_input.shape == (28, 28, 1) and model_input.dtype == np.float32
    assert model_input.min() == 0.0 and model_input.max() == 1.0
    np.testing.assert_array_equal(np.rint(model_input[..., 0] * 255).astype(np.uint8), mnist_digits[0])


def test_to_model_inputs_converts_a_batch_exactly_as_one_digit_at_a_time(mnist_digits):
    batch = to_model_inputs(mnist_digits[:8])
    assert batch.shape == (8, 28, 28, 1) and batch.dtype == np.float32
    one_at_a_time = np.stack([to_model_input(digit) for digit in mnist_digits[:8]])
    np.testing.assert_array_equal(batch, one_at_a_time)


@pytest.mark.parametrize(
    ("shape", "dtype"), [((28, 28), np.float32), ((28, 28, 1), np.uint8), ((20, 20), np.uint8)]
)
def test_to_model_input_rejects_anything_but_a_canonical_digit(shape, dtype):
    with pytest.raises(ValueError):
        to_model_input(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    ("shape", "dtype"), [((4, 28, 28), np.float32), ((4, 28, 28, 1), np.uint8), ((28, 28), np.uint8)]
)
def test_to_model_inputs_rejects_anything_but_a_batch_of_canonical_digits(shape, dtype):
    with pytest.raises(ValueError):
        to_model_inputs(np.zeros(shape, dtype=dtype))
