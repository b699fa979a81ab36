"""Plots a person reads: the training curves of a whole lineage with every epoch a point, confusion
counts in a colour that reads on their cell, digit grids whose captions and title cover no digit."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from training.lineage import RunHistory
from training.plots import (
    choose_text_color,
    draw_confusion_matrices,
    draw_digit_grid,
    draw_training_curves,
    save_training_curves,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def one_epoch_run() -> RunHistory:
    history = {"loss": [2.5], "accuracy": [0.25], "val_loss": [2.3], "val_accuracy": [0.11]}
    return RunHistory("smoke", 1, 1, history, {"val_loss": 0.97, "val_accuracy": 0.71})


def lines_of(axis) -> dict[str, list]:
    """Label -> its lines, of an axis (lines without a label left out)."""
    lines: dict[str, list] = {}
    for line in axis.get_lines():
        lines.setdefault(line.get_label(), []).append(line)
    return lines


def test_a_one_epoch_run_shows_its_points_and_a_whole_epoch_axis():
    figure = draw_training_curves([one_epoch_run()])

    loss_axis, accuracy_axis = figure.axes[:2]
    for axis in (loss_axis, accuracy_axis):
        lines = lines_of(axis)
        for label in ("train", "validation"):
            (line,) = lines[label]
            assert line.get_marker() == "o" and line.get_markersize() > 0
            assert list(line.get_xdata()) == [1]
        assert [tick for tick in axis.get_xticks() if 0.5 <= tick <= 1.5] == [1.0]  # no 0.96, 1.04
    assert lines_of(loss_axis)["validation"][0].get_ydata()[0] == pytest.approx(2.3)


def test_the_kept_weights_validation_figures_are_drawn_apart_from_the_best_epochs():
    figure = draw_training_curves([one_epoch_run()])

    loss_axis, accuracy_axis = figure.axes[:2]
    (kept_loss,) = lines_of(loss_axis)["kept weights (validation)"]
    (kept_accuracy,) = lines_of(accuracy_axis)["kept weights (validation)"]
    assert list(kept_loss.get_ydata()) == [0.97] and list(kept_accuracy.get_ydata()) == [0.71]


def test_a_lineage_draws_each_run_at_its_epochs_and_marks_where_each_run_starts():
    parent = RunHistory("parent", 1, 3, {"loss": [3.0, 2.0, 1.0], "val_loss": [2.9, 1.9, 1.1]})
    child = RunHistory("child", 4, 2, {"loss": [0.9, 0.8], "val_loss": [1.0, 0.95]})

    figure = draw_training_curves([parent, child])

    loss_axis = figure.axes[0]
    train_lines = lines_of(loss_axis)["train"]
    assert [list(line.get_xdata()) for line in train_lines] == [[1, 2, 3], [4, 5]]
    starts = [line.get_xdata()[0] for line in loss_axis.get_lines() if line.get_linestyle() == ":"]
    assert starts == [0.5, 3.5]
    assert {text.get_text() for text in loss_axis.texts} == {"parent", "child"}
    assert loss_axis.get_xlim() == (0.5, 5.5)


def test_training_curves_are_saved_as_a_png(tmp_path):
    save_training_curves(tmp_path / "curves.png", [one_epoch_run()])

    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("background", "expected"),
    [
        ((0.0, 0.0, 0.0, 1.0), "white"),
        ((1.0, 1.0, 1.0, 1.0), "black"),
        (to_rgba("#08306b"), "white"),  # the darkest blue of "Blues", the diagonal's cells
        (to_rgba("#f7fbff"), "black"),  # the lightest, a cell of one confusion
        (to_rgba("yellow"), "black"),
        (to_rgba("navy"), "white"),
    ],
)
def test_text_colour_is_the_one_that_contrasts_more_with_the_cell(background, expected):
    assert choose_text_color(background) == expected


def test_confusion_counts_are_white_on_dark_cells_and_black_on_light_ones():
    matrix = np.diag(np.full(10, 900))
    matrix[3, 5] = 1

    figure = draw_confusion_matrices({"mnist/test": matrix})

    colors = {text.get_text(): to_rgba(text.get_color()) for text in figure.axes[0].texts}
    assert colors["900"] == to_rgba("white") and colors["1"] == to_rgba("black")


def test_digit_grid_captions_and_title_cover_no_digit_and_no_other_text():
    images = np.full((25, 28, 28), 255, dtype=np.uint8)
    # Long captions, as the augmentation grid's rows have, wider than a digit.
    captions = [f"brightness contrast {index}" for index in range(25)]

    figure = draw_digit_grid(images, captions, "misclassified: true→predicted")

    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)  # the constrained layout runs at drawing time
    shown = [axis for axis in figure.axes if axis.images]
    digits = [axis.images[0].get_window_extent(renderer) for axis in shown]
    captions_drawn = [axis.title.get_window_extent(renderer) for axis in shown]
    title = figure._suptitle.get_window_extent(renderer)
    assert len(digits) == 25
    texts = [title, *captions_drawn]
    assert not any(text.overlaps(digit) for text in texts for digit in digits)
    assert not any(
        first.overlaps(second) for index, first in enumerate(texts) for second in texts[index + 1 :]
    )
    assert all(caption.y0 > digit.y1 for caption, digit in zip(captions_drawn, digits, strict=True))  # above
