"""Teachers' soft targets: what a run's training images are, in the eyes of models trained before it.

Knowledge distillation from an ensemble (Hinton et al. 2015): each training image's target is
    (1 - weight) * one-hot(label) + weight * (mean of the teachers' probabilities for that image)
instead of the one-hot label alone. It matters most for the static augmented copies: a warp, a cut or a
blot can leave a 7 that reads as a 1, and a one-hot target teaches the model to be sure of it anyway,
while the teachers say how much of a 7 is left (measured on 8,000 copies with models 6 and the cosine
refine run: the true label's probability below 0.9 for 7.8 % of the copies, 1.2 % of the originals).
The teachers are several models of this architecture, so one student of the same size learns what
their mean knows at the cost of one model at inference.

The probabilities are computed once, before training, on the images as stored (originals and static
copies); the per-batch rotations, shifts and zooms come after, as for the one-hot labels. The targets
of outliers stay uniform, and the validation loss stays the cross-entropy against the labels alone,
so runs with and without teachers compare on one measure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from digits.contract import NUM_CLASSES, to_model_inputs
from training.weights import read_checkpoint_weights

logger = logging.getLogger(__name__)

# Images per teacher call: large batches keep inference on 2 cores near its best rate.
_PREDICT_BATCH = 1024


def teacher_probabilities(teacher_paths: Sequence[Path], images: np.ndarray) -> np.ndarray:
    """The mean of the teachers' softmax probabilities for each image.

    Args:
        teacher_paths: `.keras` checkpoints or exported model folders of the digit CNN.
        images: (N, 28, 28) uint8, white ink on black, as training stores them.

    Returns:
        (N, 10) float32, each row summing to 1.

    Raises:
        InitialWeightsError: a teacher is unreadable or holds another architecture.
    """
    from training.model import build_model

    model = build_model()  # float32 whatever the run trains in: the targets are the teachers' own answers
    inputs = to_model_inputs(images)
    total = np.zeros((len(images), NUM_CLASSES), dtype=np.float64)
    for path in teacher_paths:
        read_checkpoint_weights(model, path, flag="--teacher")
        total += model.predict(inputs, batch_size=_PREDICT_BATCH, verbose=0)
    return (total / len(teacher_paths)).astype(np.float32)


def distilled_targets(labels: np.ndarray, teacher_probs: np.ndarray, teacher_weight: float) -> np.ndarray:
    """One-hot labels blended with the teachers' probabilities.

    Args:
        labels: (N,) int in 0..9.
        teacher_probs: (N, 10) rows summing to 1, from `teacher_probabilities`.
        teacher_weight: the teachers' share of each target, in [0, 1]; 0 gives the one-hot labels.

    Returns:
        (N, 10) float32 targets, each row summing to 1.
    """
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    targets = (1.0 - teacher_weight) * one_hot + teacher_weight * teacher_probs.astype(np.float32)
    true_probability = teacher_probs[np.arange(len(labels)), labels]
    logger.info(
        "teachers' targets: the label's mean probability %.4f, below 0.9 for %.2f %% of %d images, "
        "another digit first for %.2f %%",
        float(true_probability.mean()) if len(labels) else 1.0,
        100 * float(np.mean(true_probability < 0.9)) if len(labels) else 0.0,
        len(labels),
        100 * float(np.mean(teacher_probs.argmax(axis=1) != labels)) if len(labels) else 0.0,
    )
    return targets
