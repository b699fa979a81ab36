"""build_model is the architecture of the issue: three conv blocks, a 1050-unit head, named layers."""

from __future__ import annotations

import numpy as np
import pytest

from training.model import MIXED_BFLOAT16, as_float32, build_model

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


def test_a_mixed_precision_model_computes_in_bfloat16_keeps_float32_weights_and_answers_in_float32():
    mixed = build_model(dtype_policy=MIXED_BFLOAT16)
    assert mixed.get_layer("block1a_conv").compute_dtype == "bfloat16"
    assert mixed.get_layer("dense").compute_dtype == "bfloat16"
    assert {weight.dtype for weight in mixed.weights} == {"float32"}
    # The softmax is float32: bfloat16 would round a confident answer's probability in steps of 0.004.
    assert mixed.get_layer("probs").compute_dtype == "float32"
    probabilities = mixed(np.random.default_rng(2).random((3, 28, 28, 1), dtype=np.float32), training=False)
    assert np.asarray(probabilities).dtype == np.float32
    assert np.allclose(np.asarray(probabilities).sum(axis=1), 1.0, atol=1e-5)


def test_weights_trained_in_mixed_precision_load_into_the_float32_model_and_read_the_same(model):
    mixed = build_model(dtype_policy=MIXED_BFLOAT16)
    assert [(weight.path, weight.shape) for weight in mixed.weights] == [
        (weight.path, weight.shape) for weight in model.weights
    ]
    float32 = build_model()
    float32.set_weights(mixed.get_weights())
    images = np.random.default_rng(3).random((8, 28, 28, 1), dtype=np.float32)
    # The same weights: the answers differ by bfloat16's rounding of the activations only.
    np.testing.assert_allclose(
        np.asarray(float32(images, training=False)), np.asarray(mixed(images, training=False)), atol=0.02
    )


def test_as_float32_keeps_a_float32_model_and_rebuilds_a_mixed_one_in_float32_with_its_weights(model):
    assert as_float32(model) is model
    mixed = build_model(dtype_policy=MIXED_BFLOAT16)
    float32 = as_float32(mixed)
    assert {layer.compute_dtype for layer in float32.layers[1:]} == {"float32"}
    for rebuilt, trained in zip(float32.get_weights(), mixed.get_weights(), strict=True):
        np.testing.assert_array_equal(rebuilt, trained)
