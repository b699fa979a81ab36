"""Binarized ink of a number (H, W) bool -> its layout: the digit-sized parts left to right, each with
its pieces, grouped into clusters of close parts, and the writing's slant.

The first stages of `segment`:
1. `find_rules`: ruled lines, underlines and the sides of a form box are strokes much longer than a
   digit is tall; an opening with a long thin kernel finds them, and they leave the mask.
2. `find_ink_components`: connected components; page edges and frames at the border, and frames
   around the number (`find_frames`), are dropped.
3. `find_parts`: the digit-sized components of the row collect their shorter pieces (a 5's detached
   flag, a 7's bar, a broken stroke); specks and marks away from the row are dropped.
4. `cluster_parts`: parts closer than a gap between digits form a cluster, whose grouping into digits
   the model decides (`segment`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from app.pipeline.digit_parts import MIN_DIGIT_GAP_FRACTION
from app.pipeline.ink import label_components
from app.pipeline.preprocess import MIN_DIGIT_EXTENT_FRACTION, MIN_DIGIT_EXTENT_PIXELS, find_border_artifacts
from digits.errors import NoDigitFoundError

# A ruled line, an underline or a box side runs straight for longer than 1.5 digit heights; no stroke
# of a digit does (a 1 is one height long, a 7's bar or a 2's base about half of it).
RULE_LENGTH_HEIGHTS = 1.5
MAX_DIGIT_ASPECT_FOR_REFERENCE = 3.0  # wider components are lines (or many touching digits)
MAX_TOUCHING_RUN_ASPECT = 8.0  # ten touching digits are about 6 heights wide; a line is wider still
SPECK_HEIGHTS = 0.12  # marks smaller than this (in digit heights) either way are specks
# Digits of one number differ in height (a wide 5 of MNIST is 14 pixels tall beside a 20-pixel 1); a
# 7's bar, a 5's detached flag or a 4's top are shorter than this. A piece near no digit and taller
# than MIN_LONE_PIECE_HEIGHTS is a small digit of its own, not a stray mark.
MIN_PART_HEIGHTS = 0.45
MIN_LONE_PIECE_HEIGHTS = 0.3
MIN_FRAMED_HEIGHT_FRACTION = 0.3
MIN_ROW_OVERLAP_FRACTION = 0.5  # of the shorter height: in the row of the largest part
PIECE_REACH_HEIGHTS = 0.35  # a piece joins a digit at most this far from it, in columns
MAX_PARTS_PER_CLUSTER = 4  # close parts whose groupings into digits are all read (2**(n-1) of them)
MAX_SLANT = 0.5  # horizontal pixels per vertical pixel (~27 degrees)
DIGIT_WIDTH_HEIGHTS = 0.6  # a handwritten digit's usual width, in digit heights


def reference_height(stats: np.ndarray, is_ink: np.ndarray) -> int:
    """The height of the largest ink component that is not line-shaped: one digit's height.

    Raises:
        NoDigitFoundError: every component is a line (an underline or a wavy line alone).
    """
    width, height, area = stats[:, 2], stats[:, 3], stats[:, 4]
    is_digit_shaped = is_ink & (width <= MAX_DIGIT_ASPECT_FOR_REFERENCE * height)
    if not is_digit_shaped.any():  # a run of several touching digits, else lines only
        is_digit_shaped = is_ink & (width <= MAX_TOUCHING_RUN_ASPECT * height)
    if not is_digit_shaped.any():
        raise NoDigitFoundError("no digit found: the image holds lines, nothing shaped like a digit")
    return int(height[np.argmax(np.where(is_digit_shaped, area, -1))])


def find_frames(stats: np.ndarray, is_sizeable: np.ndarray) -> np.ndarray:
    """(N,) bool: the components whose box holds another sizeable component's whole box, one at least
    MIN_FRAMED_HEIGHT_FRACTION as tall: a form field's frame around the number (a digit's box never
    holds a whole other digit; a broken-off bit of stroke inside it is much shorter)."""
    labels = np.flatnonzero(is_sizeable)
    left, top, width, height = stats[labels, :4].T.astype(np.int64)
    right, bottom = left + width, top + height
    holds = (
        (left[:, None] < left[None, :])
        & (top[:, None] < top[None, :])
        & (right[:, None] > right[None, :])
        & (bottom[:, None] > bottom[None, :])
        & (height[None, :] >= MIN_FRAMED_HEIGHT_FRACTION * height[:, None])
    )
    is_frame = np.zeros(len(stats), dtype=bool)
    is_frame[labels[holds.any(axis=1)]] = True
    return is_frame


def find_ink_components(strong: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W) bool -> labels (H, W) int32, stats (N, 5), is_ink (N,) bool (not background nor a frame)."""
    count, labels, stats = label_components(strong)
    extents = np.maximum(stats[:, 2], stats[:, 3])
    min_extent = max(MIN_DIGIT_EXTENT_PIXELS, MIN_DIGIT_EXTENT_FRACTION * max(strong.shape))
    is_ink = (np.arange(count) > 0) & ~find_border_artifacts(labels, stats)
    is_ink &= ~find_frames(stats, is_ink & (extents >= min_extent))
    if not np.any(is_ink & (extents >= min_extent)):
        raise NoDigitFoundError("no digit found: the image holds only specks, or ink along its border")
    return labels, stats, is_ink


def find_rules(strong: np.ndarray, digit_height: int) -> np.ndarray:
    """(H, W) bool -> (H, W) bool: the straight strokes longer than RULE_LENGTH_HEIGHTS digits."""
    length = max(3, round(RULE_LENGTH_HEIGHTS * digit_height))
    mask = strong.view(np.uint8)
    horizontal = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, length), np.uint8))
    vertical = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((length, 1), np.uint8))
    return (horizontal | vertical).view(bool)


def labels_of(count: int, labels: np.ndarray) -> np.ndarray:
    """(count,) bool, True at the given component labels: `table[label_image]` is the image's pixels
    of those components (a lookup, where `np.isin` would sort)."""
    table = np.zeros(count, dtype=bool)
    table[labels] = True
    return table


def find_parts(stats: np.ndarray, is_ink: np.ndarray, digit_height: int) -> list[np.ndarray]:
    """Component stats -> the labels of each digit-sized part and its attached pieces, left to right.

    A part is at least MIN_PART_HEIGHTS of the digit height tall and lies in the row of the largest
    one (vertically overlapping it by half the shorter's height). A shorter piece joins the part
    whose columns it shares, or the nearest within PIECE_REACH_HEIGHTS; one that none is near and
    that is tall enough is a small digit of its own; the rest (specks, dashes, stray marks) are dropped.
    """
    left, top, width, height = stats[:, :4].T
    right, bottom = left + width, top + height
    is_sizeable = is_ink & (np.maximum(width, height) >= SPECK_HEIGHTS * digit_height)
    if not is_sizeable.any():
        raise NoDigitFoundError("no digit found: the image holds only specks")
    is_tall = is_sizeable & (height >= MIN_PART_HEIGHTS * digit_height)
    if not is_tall.any():  # a wavy underline or a dash alone: marks, but nothing of a digit's height
        raise NoDigitFoundError("no digit found: the marks are too low to be digits")
    # The row is the largest part's: an underline or a long dash, however much ink, does not set it.
    main = int(np.argmax(np.where(is_tall, stats[:, 4], -1)))
    overlap = np.minimum(bottom, bottom[main]) - np.maximum(top, top[main])
    is_in_row = overlap >= MIN_ROW_OVERLAP_FRACTION * np.minimum(height, height[main])
    is_part = is_tall & is_in_row
    parts: dict[int, list[int]] = {int(label): [int(label)] for label in np.flatnonzero(is_part)}
    part_labels = np.flatnonzero(is_part)
    part_left, part_right = left[part_labels], right[part_labels]
    part_top, part_bottom = top[part_labels], bottom[part_labels]
    reach = PIECE_REACH_HEIGHTS * digit_height
    for label in np.flatnonzero(is_sizeable & ~is_part):
        # A piece lies within reach of its digit's rows (a 5's flag just above it): a wavy line or a
        # note under or over the row is no piece of a digit, even where it shares the digit's columns.
        vertical_gap = np.maximum(part_top - bottom[label], top[label] - part_bottom)
        shared = np.where(
            vertical_gap <= reach,
            np.minimum(right[label], part_right) - np.maximum(left[label], part_left),
            0,
        )
        distance = np.where(
            vertical_gap <= reach, np.maximum(part_left - right[label], left[label] - part_right), np.inf
        )
        nearest = int(np.argmax(shared)) if shared.max() > 0 else int(np.argmin(distance))
        if shared.max() > 0 or distance[nearest] <= reach:
            parts[int(part_labels[nearest])].append(int(label))
        elif is_in_row[label] and height[label] >= MIN_LONE_PIECE_HEIGHTS * digit_height:
            parts[int(label)] = [int(label)]
    return [np.array(parts[label]) for label in sorted(parts, key=lambda label: left[label])]


def cluster_parts(stats: np.ndarray, parts: list[np.ndarray], digit_height: int) -> list[list[int]]:
    """Parts -> runs of neighbours closer than a gap between digits (the pieces of a broken digit, or
    digits written close): which of them form one digit is the model's call. At most
    MAX_PARTS_PER_CLUSTER parts a run; longer runs are cut at their widest gaps."""
    lefts = np.array([stats[labels, 0].min() for labels in parts])
    rights = np.array([(stats[labels, 0] + stats[labels, 2]).max() for labels in parts])
    gaps = lefts[1:] - np.maximum.accumulate(rights)[:-1]
    is_close = gaps < MIN_DIGIT_GAP_FRACTION * digit_height
    clusters = np.split(np.arange(len(parts)), np.flatnonzero(~is_close) + 1)
    result: list[list[int]] = []
    while clusters:
        cluster = clusters.pop(0)
        if len(cluster) <= MAX_PARTS_PER_CLUSTER:
            result.append(cluster.tolist())
            continue
        widest = int(np.argmax(gaps[cluster[:-1]])) + 1
        clusters[:0] = [cluster[:widest], cluster[widest:]]
    return result


def part_pixels(labels: np.ndarray, stats: np.ndarray, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of a part's ink, from the labels inside its components' joint box."""
    left, top = stats[part, 0].min(), stats[part, 1].min()
    right, bottom = (stats[part, 0] + stats[part, 2]).max(), (stats[part, 1] + stats[part, 3]).max()
    return np.nonzero(labels_of(len(stats), part)[labels[top:bottom, left:right]])


def estimate_slant(group_pixels: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Columns per row of the writing's slant: the median of each digit group's own second moments."""
    slants = []
    for rows, columns in group_pixels:
        row_spread = rows - rows.mean()
        if (variance := float(row_spread @ row_spread)) > 0:
            slants.append(float(row_spread @ (columns - columns.mean())) / variance)
    return float(np.clip(np.median(slants), -MAX_SLANT, MAX_SLANT)) if slants else 0.0


@dataclass(frozen=True)
class NumberLayout:
    """Where a number's digits are in its ink.

    Attributes:
        labels: (H, W) int32 component label of each pixel (0: paper, erased rules included).
        stats: (N, 5) int32 per component: left, top, width, height, area.
        digit_height: the height of one digit, in pixels (the largest digit-shaped component's).
        parts: each digit-sized part's component labels (its pieces included), left to right.
        clusters: indices into `parts`, runs of close parts, left to right.
        slant: columns per row of the writing's slant.
        typical_width: the width of the number's typical digit, in pixels.
    """

    labels: np.ndarray
    stats: np.ndarray
    digit_height: int
    parts: list[np.ndarray]
    clusters: list[list[int]]
    slant: float
    typical_width: float


def lay_out_number(strong: np.ndarray) -> NumberLayout:
    """(H, W) bool ink mask of a number -> its layout.

    Raises:
        NoDigitFoundError: no ink but specks, or ink along the border only.
    """
    labels, stats, is_ink = find_ink_components(strong)
    rules = find_rules(strong, reference_height(stats, is_ink))
    if rules.any():  # most numbers have none, and their components stand as they are
        labels, stats, is_ink = find_ink_components(strong & ~rules)
    digit_height = reference_height(stats, is_ink)
    parts = find_parts(stats, is_ink, digit_height)
    slant = estimate_slant([part_pixels(labels, stats, part) for part in parts])
    # Most parts are one digit each: their median width (with one digit's usual width as a prior, for
    # numbers of one or two parts) is the number's typical digit width.
    part_widths = [
        np.ptp(np.concatenate([stats[part, 0], stats[part, 0] + stats[part, 2]])) for part in parts
    ]
    typical_width = float(np.median([*part_widths, DIGIT_WIDTH_HEIGHTS * digit_height]))
    clusters = cluster_parts(stats, parts, digit_height)
    return NumberLayout(labels, stats, digit_height, parts, clusters, slant, typical_width)
