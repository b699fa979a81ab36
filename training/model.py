"""TrainConfig -> keras.Model: the digit CNN, (None, 28, 28, 1) float32 in [0, 1] -> (None, 10) probabilities.

Three convolutional blocks and a dense head, exactly as specified in the project's training issue.
The model is Functional with named layers so that exported signatures and saved checkpoints are
stable across runs and backends (TensorFlow, JAX, PyTorch).
"""

from __future__ import annotations

import keras
from keras import layers

from digits.contract import IMAGE_SHAPE, NUM_CLASSES

INPUT_NAME = "image"
OUTPUT_NAME = "probs"

# (block name, filters, padding). Block 3 pads 'same' because its input is only 4x4.
CONV_BLOCKS = (("block1", 32, "valid"), ("block2", 96, "valid"), ("block3", 128, "same"))


# What the layers compute in: float32, or bfloat16 with float32 weights for training (`--mixed-precision`).
FLOAT32 = "float32"
MIXED_BFLOAT16 = "mixed_bfloat16"


def _conv_bn_relu(inputs, filters: int, padding: str, name: str, dtype: str):
    # The convolution has no bias because the batch norm right after it has its own shift.
    convolution = layers.Conv2D(filters, 3, padding=padding, use_bias=False, name=f"{name}_conv", dtype=dtype)
    outputs = convolution(inputs)
    outputs = layers.BatchNormalization(name=f"{name}_bn", dtype=dtype)(outputs)
    return layers.ReLU(name=f"{name}_relu", dtype=dtype)(outputs)


def build_model(
    dense_units: int = 1050,
    dense_l2: float = 1e-4,
    spatial_dropout_rate: float = 0.2,
    dropout_rate: float = 0.5,
    dtype_policy: str = FLOAT32,
) -> keras.Model:
    """Builds the (uncompiled) digit classifier.

    Args:
        dense_units: width of the hidden dense layer of the head.
        dense_l2: L2 weight-decay factor on that dense layer's kernel.
        spatial_dropout_rate: SpatialDropout2D rate after each convolutional block.
        dropout_rate: Dropout rate before the output layer.
        dtype_policy: what every layer but the output computes in: FLOAT32, or MIXED_BFLOAT16 (bfloat16
            activations and float32 weights, ~20 % less time a training step on a CPU with AVX512-BF16).
            The softmax computes in float32 either way, and the weights have the same names and shapes:
            a mixed model's weights load into a float32 one.

    Returns:
        A Functional `keras.Model` named "digit_cnn" with input "image" (None, 28, 28, 1) float32 in
        [0, 1] and output "probs" (None, 10) float32 softmax probabilities.
    """
    images = keras.Input(shape=IMAGE_SHAPE, name=INPUT_NAME, dtype="float32")
    features = images
    for block_name, filters, padding in CONV_BLOCKS:
        features = _conv_bn_relu(features, filters, padding, f"{block_name}a", dtype_policy)
        features = _conv_bn_relu(features, filters, padding, f"{block_name}b", dtype_policy)
        features = layers.MaxPooling2D(2, name=f"{block_name}_pool", dtype=dtype_policy)(features)
        features = layers.SpatialDropout2D(
            spatial_dropout_rate, name=f"{block_name}_dropout", dtype=dtype_policy
        )(features)

    features = layers.Flatten(name="flatten", dtype=dtype_policy)(features)
    features = layers.Dense(
        dense_units,
        use_bias=False,
        kernel_regularizer=keras.regularizers.L2(dense_l2),
        name="dense",
        dtype=dtype_policy,
    )(features)
    features = layers.BatchNormalization(name="dense_bn", dtype=dtype_policy)(features)
    features = layers.ReLU(name="dense_relu", dtype=dtype_policy)(features)
    features = layers.Dropout(dropout_rate, name="dense_dropout", dtype=dtype_policy)(features)
    # float32 whatever the policy: bfloat16's 8-bit mantissa would round probabilities near 1 (and the
    # cross-entropy of a confident answer) to a few steps of 0.004.
    probabilities = layers.Dense(NUM_CLASSES, activation="softmax", name=OUTPUT_NAME, dtype=FLOAT32)(features)
    return keras.Model(images, probabilities, name="digit_cnn")


def as_float32(model: keras.Model) -> keras.Model:
    """The model itself when every layer computes in float32; else a float32 build of the digit CNN
    holding its weights (a `--mixed-precision` run's checkpoint written before the run ended).

    Raises:
        ValueError: the weights do not fit the digit CNN (another architecture).
    """
    if all(layer.compute_dtype == FLOAT32 for layer in model.layers):
        return model
    float32 = build_model()
    float32.set_weights(model.get_weights())
    return float32
