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


def _conv_bn_relu(inputs, filters: int, padding: str, name: str):
    # The convolution has no bias because the batch norm right after it has its own shift.
    outputs = layers.Conv2D(filters, 3, padding=padding, use_bias=False, name=f"{name}_conv")(inputs)
    outputs = layers.BatchNormalization(name=f"{name}_bn")(outputs)
    return layers.ReLU(name=f"{name}_relu")(outputs)


def build_model(
    dense_units: int = 1050,
    dense_l2: float = 1e-4,
    spatial_dropout_rate: float = 0.2,
    dropout_rate: float = 0.5,
) -> keras.Model:
    """Builds the (uncompiled) digit classifier.

    Args:
        dense_units: width of the hidden dense layer of the head.
        dense_l2: L2 weight-decay factor on that dense layer's kernel.
        spatial_dropout_rate: SpatialDropout2D rate after each convolutional block.
        dropout_rate: Dropout rate before the output layer.

    Returns:
        A Functional `keras.Model` named "digit_cnn" with input "image" (None, 28, 28, 1) float32 in
        [0, 1] and output "probs" (None, 10) float32 softmax probabilities.
    """
    images = keras.Input(shape=IMAGE_SHAPE, name=INPUT_NAME, dtype="float32")
    features = images
    for block_name, filters, padding in CONV_BLOCKS:
        features = _conv_bn_relu(features, filters, padding, f"{block_name}a")
        features = _conv_bn_relu(features, filters, padding, f"{block_name}b")
        features = layers.MaxPooling2D(2, name=f"{block_name}_pool")(features)
        features = layers.SpatialDropout2D(spatial_dropout_rate, name=f"{block_name}_dropout")(features)

    features = layers.Flatten(name="flatten")(features)
    features = layers.Dense(
        dense_units,
        use_bias=False,
        kernel_regularizer=keras.regularizers.L2(dense_l2),
        name="dense",
    )(features)
    features = layers.BatchNormalization(name="dense_bn")(features)
    features = layers.ReLU(name="dense_relu")(features)
    features = layers.Dropout(dropout_rate, name="dense_dropout")(features)
    probabilities = layers.Dense(NUM_CLASSES, activation="softmax", name=OUTPUT_NAME)(features)
    return keras.Model(images, probabilities, name="digit_cnn")
