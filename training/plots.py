"""Arrays -> PNG files for a person to look at: augmentation samples, curves, confusions, mistakes.

Matplotlib with the Agg backend, so plots render on a headless machine or in a container.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.axes  # noqa: E402  (the backend must be chosen before pyplot loads)
import matplotlib.figure  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

if TYPE_CHECKING:
    from training.lineage import RunHistory


def draw_digit_grid(
    images: np.ndarray, captions: Sequence[str], title: str, columns: int = 10
) -> matplotlib.figure.Figure:
    """Draws images (N, 28, 28) uint8 in a grid, each under its caption, below the title.

    The constrained layout makes room for each caption between the rows and for the title above the
    first, so no text lies over a digit.
    """
    rows = max(1, int(np.ceil(len(images) / columns)))
    # A cell as wide as its longest caption (about 0.07 inch a character at 8 points) keeps them apart.
    cell_inches = max(1.1, 0.07 * max((len(caption) for caption in captions), default=0) + 0.15)
    figure, axes = plt.subplots(
        rows, columns, figsize=(columns * cell_inches, rows * 1.35 + 0.4), squeeze=False, layout="constrained"
    )
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, caption in zip(axes.flat, images, captions, strict=False):
        axis.imshow(image, cmap="gray", vmin=0, vmax=255)
        axis.set_title(caption, fontsize=8, pad=4)
    figure.suptitle(title)
    return figure


def save_digit_grid(
    path: Path, images: np.ndarray, captions: Sequence[str], title: str, columns: int = 10
) -> None:
    """Saves images (N, 28, 28) uint8 as a grid, each under its caption (`draw_digit_grid`)."""
    _save(draw_digit_grid(images, captions, title, columns), path)


def save_training_curves(path: Path, runs: Sequence[RunHistory]) -> None:
    """Saves `draw_training_curves(runs)`."""
    _save(draw_training_curves(runs), path)


def draw_training_curves(runs: Sequence[RunHistory]) -> matplotlib.figure.Figure:
    """Draws loss and accuracy per epoch, training against validation, over a model's whole lineage.

    Args:
        runs: the runs the model descends from and its own last (`training.lineage.list_run_histories`),
            each drawn at its epochs on one axis; a dotted line and the run's name mark where each run
            of a lineage starts, a star the validation figure of the weights it kept (chosen after
            its last epoch). Every epoch is a point, so a one-epoch run shows too.
    """
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
    last_epoch = max((run.last_epoch for run in runs), default=1)
    for metric, axis in zip(("loss", "accuracy"), axes, strict=True):
        for run in runs:
            _draw_run(axis, run, metric, is_lineage=len(runs) > 1)
        axis.set_xlim(0.5, last_epoch + 0.5)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axis.set_xlabel("epoch" if len(runs) < 2 else "epoch (of the whole lineage)")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
    # One legend under both plots, where it hides no point; each entry once.
    handles_by_label = {
        label: handle
        for axis in axes
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True)
    }
    if handles_by_label:
        figure.legend(handles_by_label.values(), handles_by_label.keys(), loc="outside lower center", ncols=3)
    return figure


def _draw_run(axis: matplotlib.axes.Axes, run: RunHistory, metric: str, *, is_lineage: bool) -> None:
    """One run's training and validation values of `metric`, its kept weights' star and, in a lineage,
    the dotted line and name where it starts."""
    for prefix, label, color in (("", "train", "tab:blue"), ("val_", "validation", "tab:orange")):
        values = run.history.get(prefix + metric)
        if values:
            epochs = run.epoch_numbers(prefix + metric)
            axis.plot(epochs, values, marker="o", markersize=4, color=color, label=label)
    if "val_" + metric in run.kept:
        axis.plot(
            run.last_epoch, run.kept["val_" + metric], linestyle="none", marker="*", markersize=10,
            color="black", label="kept weights (validation)",
        )  # fmt: skip
    if is_lineage:
        axis.axvline(run.first_epoch - 0.5, color="grey", linestyle=":", linewidth=1)
        axis.text(
            run.first_epoch - 0.45, 0.98, run.name, transform=axis.get_xaxis_transform(),
            rotation=90, va="top", ha="left", fontsize=8, color="dimgrey",
        )  # fmt: skip


def choose_text_color(background: Sequence[float]) -> str:
    """The colour, "black" or "white", that contrasts more with an RGB(A) background in [0, 1] (the WCAG
    contrast ratio of its relative luminance): white on dark cells, black on light ones."""
    linear = [
        channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4
        for channel in background[:3]
    ]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "white" if (1.0 + 0.05) / (luminance + 0.05) > (luminance + 0.05) / 0.05 else "black"


def save_confusion_matrices(path: Path, matrices: Mapping[str, np.ndarray]) -> None:
    """Saves `draw_confusion_matrices(matrices)`."""
    _save(draw_confusion_matrices(matrices), path)


def draw_confusion_matrices(matrices: Mapping[str, np.ndarray]) -> matplotlib.figure.Figure:
    """Draws one 10x10 confusion matrix (counts, rows true, columns predicted) per test set, side by side;
    each count is written in the colour that reads on its cell."""
    figure, axes = plt.subplots(1, len(matrices), figsize=(5.5 * len(matrices), 5), squeeze=False)
    for axis, (name, matrix) in zip(axes.flat, matrices.items(), strict=True):
        # Log counts, so that the few confusions show beside the diagonal's hundreds.
        shading = axis.imshow(np.log1p(matrix), cmap="Blues")
        for (true_digit, predicted_digit), count in np.ndenumerate(matrix):
            if count:
                background = shading.cmap(shading.norm(np.log1p(count)))
                axis.text(
                    predicted_digit, true_digit, str(count), ha="center", va="center", fontsize=7,
                    color=choose_text_color(background),
                )  # fmt: skip
        axis.set_xticks(range(10))
        axis.set_yticks(range(10))
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(name)
    figure.tight_layout()
    return figure


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


def _save(figure: matplotlib.figure.Figure, path: Path) -> None:
    figure.savefig(path, dpi=80)
    plt.close(figure)
