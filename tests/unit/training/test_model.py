"""build_model is the architecture of the issue: three conv blocks, a 1050-unit head, named layers."""

from __future__ import annotations

import numpy as np
import pytest

from training.model import build_model

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def model():
    return build_model()


def test_model_maps_28x28_images_to_10_probabilities(model):
    probabilities = np.asarray(model(np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)))
    assert probabilities.shape == (3, 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_model_has_named_input_and_output(model):
    assert model.layers[0].name == "image"
    assert model.layers[-1].name == "probs"


def test_model_blocks_have_the_specified_filters_and_padding(model):
    convolutions = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [layer.filters for layer in convolutions] == [32, 32, 96, 96, 128, 128]
    assert [layer.kernel_size for layer in convolutions] == [(3, 3)] * 6
    assert [layer.padding for layer in convolutions] == ["valid"] * 4 + ["same"] * 2


def test_each_block_is_conv_bn_relu_twice_then_pool_and_spatial_dropout(model):
    kinds = [layer.__class__.__name__ for layer in model.layers[1:]]
    block = ["Conv2D", "BatchNormalization", "ReLU"] * 2 + ["MaxPooling2D", "SpatialDropout2D"]
    head = ["Flatten", "Dense", "BatchNormalization", "ReLU", "Dropout", "Dense"]
    assert kinds == block * 3 + head
    dropouts = [layer.rate for layer in model.layers if layer.__class__.__name__ == "SpatialDropout2D"]
    assert dropouts == [0.2, 0.2, 0.2]


def test_head_is_1050_units_with_l2_and_half_dropout(model):
    dense = model.get_layer("dense")
    assert dense.units == 1050
    assert dense.kernel_regularizer is not None and dense.kernel_regularizer.l2 > 0
    assert model.get_layer("dense_dropout").rate == 0.5
    assert model.get_layer("probs").units == 10


def test_model_is_deterministic_in_inference_mode(model):
    images = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    first = np.asarray(model(images, training=False))
    second = np.asarray(model(images, training=False))
    assert np.array_equal(first, second)
