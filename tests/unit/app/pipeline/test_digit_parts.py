"""preprocess_image counts the digits written side by side (`digit_parts`); one digit is always 1.

The rule lives in `app.pipeline.digit_parts` (its docstring has the measured figures): separate
components of about the main part's height, in its row, that share no column with it are further
digits, unless two of them lie close and together fit one digit's box (the pieces of a broken 4).
Short pieces (a 5's flag, a 7's bar or crossbar, a 1's base) never count, nor do marks above or below.
The canonical digit is the one `preprocess_image` returned before digit parts existed (measured:
identical on every MNIST, USPS and CVL test digit and 12,000 renderings of them on paper; the
neighbouring tests check it on MNIST and photos); `digit_parts` only adds a count.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.pipeline.decode import decode_image
from app.pipeline.digit_parts import find_digit_parts
from app.pipeline.preprocess import preprocess_image

pytestmark = pytest.mark.unit

PAPER_LEVEL = 230
INK_LEVEL = 30
HEIGHT_PIXELS = 100  # of a drawn digit
STROKE_PIXELS = 8
MARGIN_PIXELS = 60
# Pen strokes of each drawing, as polylines in a box one digit high: x to the right, y down.
DRAWINGS = {
    "0": [
        [(0.3 + 0.3 * np.sin(angle), 0.5 - 0.5 * np.cos(angle)) for angle in np.linspace(0, 2 * np.pi, 25)]
    ],
    "1": [[(0.1, 0.15), (0.3, 0.0), (0.3, 1.0)]],
    "1 without a flag": [[(0.0, 0.0), (0.0, 1.0)]],
    "2": [[(0.0, 0.2), (0.15, 0.03), (0.35, 0.0), (0.55, 0.12), (0.5, 0.4), (0.0, 1.0), (0.6, 1.0)]],
    "3": [
        [(0.0, 0.1), (0.25, 0.0), (0.5, 0.1), (0.5, 0.35), (0.2, 0.5), (0.55, 0.65), (0.55, 0.9), (0.3, 1.0)]
    ],
    "4": [[(0.35, 0.0), (0.0, 0.65), (0.65, 0.65)], [(0.5, 0.3), (0.5, 1.0)]],
    "4 whose bar stops short of its stem": [
        [(0.3, 0.0), (0.0, 0.65), (0.38, 0.65)],
        [(0.55, 0.2), (0.55, 1.0)],
    ],
    "5 with a detached flag": [
        [(0.15, 0.0), (0.6, 0.0)],
        [(0.12, 0.12), (0.08, 0.45), (0.35, 0.38), (0.58, 0.55), (0.55, 0.85), (0.3, 1.0), (0.0, 0.9)],
    ],
    "7 with a detached bar and broken crossbar": [
        [(0.0, 0.0), (0.6, 0.0)],
        [(0.62, 0.1), (0.25, 1.0)],
        [(0.15, 0.55), (0.35, 0.55)],
        [(0.52, 0.55), (0.7, 0.55)],
    ],
    "European 1 with a detached flag and base": [
        [(0.05, 0.3), (0.25, 0.05)],
        [(0.38, 0.0), (0.38, 0.85)],
        [(0.1, 1.0), (0.65, 1.0)],
    ],
}


def blank_page(width_pixels: int, height_pixels: int) -> np.ndarray:
    return np.full((height_pixels, width_pixels), PAPER_LEVEL, dtype=np.uint8)


def draw(page: np.ndarray, name: str, left_pixels: int, top_pixels: int) -> int:
    """Draws DRAWINGS[name] with its box's top left at the given point; returns its right edge."""
    strokes = [np.array(stroke) * HEIGHT_PIXELS + (left_pixels, top_pixels) for stroke in DRAWINGS[name]]
    polylines = [np.rint(points).astype(np.int32) for points in strokes]
    cv2.polylines(page, polylines, isClosed=False, color=INK_LEVEL, thickness=STROKE_PIXELS)
    return round(max(points[:, 0].max() for points in strokes))


def write_row(names: list[str], gap_fraction: float = 0.3) -> np.ndarray:
    """The drawings side by side on one line, `gap_fraction` of a digit's height between them."""
    page = blank_page(MARGIN_PIXELS * 2 + len(names) * 2 * HEIGHT_PIXELS, HEIGHT_PIXELS + 2 * MARGIN_PIXELS)
    left = MARGIN_PIXELS
    for name in names:
        left = draw(page, name, left, MARGIN_PIXELS) + STROKE_PIXELS + round(gap_fraction * HEIGHT_PIXELS)
    return page


@pytest.mark.parametrize(
    ("names", "gap_fraction", "digit_parts"),
    [
        (["4", "2"], 0.3, 2),
        (["1", "2", "3"], 0.3, 3),
        (["4", "2"], 0.05, 2),  # a narrow gap, but too wide together for one digit
        (["4", "2"], 2.0, 2),  # far apart, still in one row
        (["1", "1"], 0.5, 2),
        (["1 without a flag"] * 2, 0.4, 2),  # narrow together, but a gap wider than a broken digit's
        (["1 without a flag"] * 2, 0.15, 1),  # as close and narrow as the pieces of a broken 4
        (["0", "4", "1", "3"], 0.2, 4),
    ],
    ids=["42", "123", "42-close", "4-far-2", "1-1", "stroke-stroke", "close-strokes-count-once", "0413"],
)
def test_preprocess_counts_the_digits_written_side_by_side(names, gap_fraction, digit_parts):
    assert preprocess_image(write_row(names, gap_fraction)).digit_parts == digit_parts


@pytest.mark.parametrize("name", list(DRAWINGS))
def test_preprocess_counts_one_drawn_digit_once_even_in_detached_pieces(name):
    assert preprocess_image(write_row([name])).digit_parts == 1


@pytest.mark.parametrize("shift_fraction", [0.0, 0.9], ids=["stacked", "lower-one-shifted-right"])
def test_preprocess_counts_two_digits_one_above_the_other_once(shift_fraction):
    # A column is not a row: digits that do not overlap vertically are not side by side, so only the
    # main one is counted (and read, as before digit parts existed).
    page = blank_page(400, 2 * HEIGHT_PIXELS + 3 * MARGIN_PIXELS)
    draw(page, "4", MARGIN_PIXELS, MARGIN_PIXELS)
    draw(page, "2", MARGIN_PIXELS + round(shift_fraction * HEIGHT_PIXELS), 2 * MARGIN_PIXELS + HEIGHT_PIXELS)
    assert preprocess_image(page).digit_parts == 1


def test_preprocess_counts_a_digit_among_specks_once():
    rng = np.random.default_rng(11)
    for _ in range(10):
        page = write_row(["7 with a detached bar and broken crossbar"])
        for row, column in rng.integers(0, (page.shape[0] - 4, page.shape[1] - 4), size=(30, 2)):
            page[row : row + rng.integers(1, 5), column : column + rng.integers(1, 5)] = INK_LEVEL
        assert preprocess_image(page).digit_parts == 1


@pytest.mark.parametrize("border", ["table beyond the left page edge", "frame", "page edge line"])
def test_preprocess_counts_a_digit_beside_a_page_border_once(border):
    page = write_row(["1"])
    height, width = page.shape
    if border == "table beyond the left page edge":
        page[:, :25] = 15
    elif border == "frame":
        cv2.rectangle(page, (3, 3), (width - 4, height - 4), INK_LEVEL, 6)
    else:
        page[:, 10:16] = INK_LEVEL
    assert preprocess_image(page).digit_parts == 1


def mnist_row(digits: np.ndarray, gap_fraction: float, scale: int = 4) -> np.ndarray:
    """MNIST digits (n, 28, 28) -> one dark-on-light page holding them side by side, enlarged."""
    crops = []
    for digit in digits:
        rows, columns = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
        crop = digit[:, columns[0] : columns[-1] + 1]
        crops += [crop, np.zeros((28, round(gap_fraction * (rows[-1] - rows[0] + 1))), dtype=np.uint8)]
    row = np.pad(np.hstack(crops[:-1]), 8)
    enlarged = cv2.resize(row, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC).astype(np.float32)
    page = PAPER_LEVEL - enlarged * ((PAPER_LEVEL - INK_LEVEL) / 255)
    return np.clip(np.rint(page), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("count", [2, 3])
def test_preprocess_counts_mnist_digits_written_side_by_side(mnist_test_samples, count):
    digits = mnist_test_samples[0][: 40 * count].reshape(40, count, 28, 28)
    digit_parts = [preprocess_image(mnist_row(row, gap_fraction=0.4)).digit_parts for row in digits]
    assert digit_parts == [count] * 40


def test_preprocess_counts_every_single_mnist_digit_once(mnist_test_samples):
    digits = mnist_test_samples[0][:2000]
    assert sum(preprocess_image(digit).digit_parts != 1 for digit in digits) == 0  # 0 of all 10,000


def test_preprocess_counts_every_single_cvl_digit_once(shared_data_dir):
    # CVL scans hold faint, broken strokes: 2 of its 7,000 test digits (zeros broken into halves,
    # "( )") count as 2; none of these 700.
    paths = sorted((shared_data_dir / "cvl" / "test").glob("*/*.png"))[::10]
    assert len(paths) == 700
    assert sum(preprocess_image(decode_image(path.read_bytes())).digit_parts != 1 for path in paths) == 0


def stats_of(*boxes: tuple[int, int, int, int]) -> np.ndarray:
    """Component stats as OpenCV gives them, label 0 (the paper) first; area: a box's half."""
    rows = [(0, 0, 1000, 1000, 0)] + [(*box, box[2] * box[3] // 2) for box in boxes]
    return np.array(rows, dtype=np.int32)


def parts_of(*boxes: tuple[int, int, int, int]) -> list[list[int]]:
    """The digit boxes found among these component boxes (the first one is the main part)."""
    stats = stats_of(*boxes)
    return find_digit_parts(stats, np.arange(len(stats)) > 0, main_label=1).tolist()


def test_find_digit_parts_gives_the_main_box_alone_for_one_component():
    assert parts_of((10, 20, 60, 100)) == [[10, 20, 60, 100]]


def test_find_digit_parts_gives_each_digit_box_left_to_right():
    # The main part (second digit), a digit to its left and one to its right, 5 pixels lower.
    assert parts_of((100, 20, 60, 100), (10, 20, 60, 100), (190, 25, 60, 95)) == [
        [10, 20, 60, 100],
        [100, 20, 60, 100],
        [190, 25, 60, 95],
    ]


@pytest.mark.parametrize(
    "other",
    [(100, 20, 40, 55), (120, 140, 60, 100), (60, 20, 60, 100)],
    ids=["short-piece-beside", "one-below-and-beside", "sharing-columns"],
)
def test_find_digit_parts_counts_no_second_digit_where_none_sits_beside_the_main_one(other):
    assert len(parts_of((10, 20, 60, 100), other)) == 1


def test_find_digit_parts_joins_close_pieces_that_fit_one_digit_box():
    # A broken 4: its bar (left) stops 10 pixels short of the stem; together 70 wide and 100 tall.
    assert parts_of((45, 20, 25, 100), (0, 20, 35, 70)) == [[0, 20, 70, 100]]
    # The same pieces 40 pixels apart (0.4 of a digit's height) are two digits, like a spaced "11".
    assert len(parts_of((75, 20, 25, 100), (0, 20, 35, 70))) == 2
