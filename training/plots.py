"""Arrays -> PNG files for a person to look at: augmentation samples, curves, confusions, mistakes.

Matplotlib with the Agg backend, so plots render on a headless machine or in a container.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)
import numpy as np  # noqa: E402


def save_digit_grid(
    path: Path, images: np.ndarray, captions: Sequence[str], title: str, columns: int = 10
) -> None:
    """Saves images (N, 28, 28) uint8 as a grid, each with a caption underneath."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, caption in zip(axes.flat, images, captions, strict=False):
        axis.imshow(image, cmap="gray", vmin=0, vmax=255)
        axis.set_title(caption, fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def save_training_curves(path: Path, history: Mapping[str, Sequence[float]]) -> None:
    """Saves loss and accuracy per epoch, training against validation."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for name, axis in (("loss", loss_axis), ("accuracy", accuracy_axis)):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = history.get(prefix + name)
            if values:
                axis.plot(range(1, len(values) + 1), values, label=label)
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def save_confusion_matrices(path: Path, matrices: Mapping[str, np.ndarray]) -> None:
    """Saves one 10x10 confusion matrix (rows true, columns predicted) per test set, side by side."""
    figure, axes = plt.subplots(1, len(matrices), figsize=(5.5 * len(matrices), 5), squeeze=False)
    for axis, (name, matrix) in zip(axes.flat, matrices.items(), strict=True):
        axis.imshow(np.log1p(matrix), cmap="Blues")
        for (true_digit, predicted_digit), count in np.ndenumerate(matrix):
            if count:
                axis.text(predicted_digit, true_digit, str(count), ha="center", va="center", fontsize=7)
        axis.set_xticks(range(10))
        axis.set_yticks(range(10))
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(name)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def save_reliability_diagrams(
    path: Path, diagrams: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> None:
    """Saves one reliability diagram per entry (mean confidence, accuracy, count per bin): bars of the
    accuracy in each confidence bin against the diagonal of perfect calibration."""
    figure, axes = plt.subplots(1, len(diagrams), figsize=(4.5 * len(diagrams), 4.5), squeeze=False)
    for axis, (name, (confidence, accuracy, count)) in zip(axes.flat, diagrams.items(), strict=True):
        bins = len(count)
        centers = (np.arange(bins) + 0.5) / bins
        filled = count > 0
        axis.bar(centers[filled], accuracy[filled], width=1 / bins, edgecolor="black", label="accuracy")
        axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
        axis.plot(
            confidence[filled], accuracy[filled], "o", color="darkred", markersize=3, label="mean confidence"
        )
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_xlabel("confidence")
        axis.set_ylabel("accuracy")
        axis.set_title(name, fontsize=9)
        axis.legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def save_risk_coverage_curves(
    path: Path, curves: Mapping[str, tuple[np.ndarray, np.ndarray]], min_coverage: float = 0.8
) -> None:
    """Saves the accuracy of the answers kept against the share kept (most confident first), one line
    per set; the x axis starts at `min_coverage`, where the choice of a threshold lies."""
    figure, axis = plt.subplots(figsize=(6, 4.5))
    for name, (coverage, accuracy) in curves.items():
        axis.plot(100 * coverage, 100 * accuracy, label=name)
    axis.set_xlim(100 * min_coverage, 100)
    axis.set_xlabel("coverage: answers accepted (%)")
    axis.set_ylabel("accepted answers right (%)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
