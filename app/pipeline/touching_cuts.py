"""A wide part of a number (H, W) bool -> its cuts into 2..4 touching digits, each a list of sides.

Touching digits form one component. A part wider than one digit may be two or more: it is cut along
lines slanted like the writing, at even spacing and at the emptiest column of its ink's profile
along the slant, and a pair also off-centre (a narrow 1 beside a wide 4 touches there); each side
must hold enough of the ink and nearly the part's height to be a digit. Which cut (if any) is right,
the model decides (`read_choice`).

The constants were chosen with `python -m bench.read_tuning --grid cuts` and on numbers written from
the train splits (seeds 11 and 12; bench/RESULTS.md "Touching pairs cut off-centre"): most touching
numbers read wrong had a 1 in the pair, a part too narrow to be cut at all or cut only in the middle.
"""

from __future__ import annotations

import numpy as np

from app.pipeline.digit_parts import MIN_PART_HEIGHT_RATIO
from app.pipeline.number_layout import DIGIT_WIDTH_HEIGHTS

# Single handwritten digits are at most about as wide as tall (a wide 0, a 2 with a long base), and a
# 1 touching another digit makes a part hardly wider than one digit: parts from 0.55 heights wide, or
# wider than the number's typical digit, get readings as touching digits too. Each touching digit is
# about 0.6 heights wide.
MIN_SPLIT_ASPECT = 0.55
MAX_ONE_DIGIT_ASPECT = 0.85
WIDE_FACTOR = 1.05
# Where else a pair is cut, as fractions of its width: two digits of unequal width meet off-centre.
PAIR_CUT_FRACTIONS = (0.3, 0.4, 0.6, 0.7)
MAX_PIECES_PER_GROUP = 4
TWO_WAY_CUTS = 2  # candidate cuts of a pair: the even one and the emptiest column near the middle
CUT_WINDOW_FRACTION = 0.3  # of a piece's expected width, either side of the evenly spaced cut
MIN_PIECE_INK_FRACTION = 0.1  # a cut leaving less of the group's ink on one side is no reading


def cut_positions(profile: np.ndarray, pieces: int) -> list[list[int]]:
    """Projection profile (W',) of a part's ink along the slant -> candidate cut lists for `pieces`.

    The evenly spaced cuts, and the emptiest columns near them: two digits touching at a point leave
    a valley in the profile there; two touching along a stroke (the sides of two 0s) leave none, and
    only the even cut separates them. A pair is also cut at `PAIR_CUT_FRACTIONS` of its width.
    """
    span = len(profile)
    step = span / pieces
    even = [round(index * step) for index in range(1, pieces)]
    if pieces == 2:
        low, high = round(span / 2 - CUT_WINDOW_FRACTION * step), round(span / 2 + CUT_WINDOW_FRACTION * step)
        emptiest = low + np.argsort(profile[low : high + 1], kind="stable")[: TWO_WAY_CUTS - 1]
        columns = [even[0], *(int(column) for column in emptiest)]
        columns += [round(fraction * span) for fraction in PAIR_CUT_FRACTIONS]
        return [[column] for column in dict.fromkeys(columns) if 0 < column < span]
    valleys = []
    for middle in even:
        low, high = round(middle - CUT_WINDOW_FRACTION * step), round(middle + CUT_WINDOW_FRACTION * step)
        valleys.append(low + int(np.argmin(profile[low : high + 1])))
    return [even] if valleys == even else [even, valleys]


def cuts_into_touching_digits(
    kept: np.ndarray, slant: float, digit_height: int, typical_width: float
) -> list[list[np.ndarray]]:
    """A wide part (H, W) bool -> its cuts into 2..k touching digits, each a list of (H, W) bool sides,
    cut along the slant at the emptiest columns; none for a part about as narrow as one digit."""
    rows, columns = np.nonzero(kept)
    height = rows.max() - rows.min() + 1
    middle_row = (rows.min() + rows.max()) / 2
    sheared = columns - slant * (rows - middle_row)  # columns along the slant
    start = sheared.min()
    span = sheared.max() - start + 1
    if span < MIN_SPLIT_ASPECT * height or (
        span < MAX_ONE_DIGIT_ASPECT * height and span < WIDE_FACTOR * typical_width
    ):
        return []
    profile = np.bincount(np.floor(sheared - start).astype(int), minlength=int(np.ceil(span)))
    grid_rows, grid_columns = np.indices(kept.shape)
    grid_sheared = grid_columns - slant * (grid_rows - middle_row) - start
    most = min(MAX_PIECES_PER_GROUP, max(2, round(span / (DIGIT_WIDTH_HEIGHTS * max(height, digit_height)))))
    cuts = []
    for pieces in range(2, most + 1):
        for positions in cut_positions(profile, pieces):
            piece_of_pixel = np.searchsorted(
                np.array(positions, dtype=np.float64), grid_sheared, side="right"
            )
            sides = [piece_of_pixel == piece for piece in range(pieces)]
            # Each piece must be a digit: enough of the ink, and nearly the part's height.
            if all(is_digit_piece(kept & side, len(rows), height) for side in sides):
                cuts.append(sides)
    return cuts


def is_digit_piece(piece: np.ndarray, ink_pixels: int, height: int) -> bool:
    rows = np.flatnonzero(piece.any(axis=1))
    return (
        np.count_nonzero(piece) >= MIN_PIECE_INK_FRACTION * ink_pixels
        and rows[-1] - rows[0] + 1 >= MIN_PART_HEIGHT_RATIO * height
    )
