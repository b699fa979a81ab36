"""Grayscale upload of a handwritten number (H, W) uint8 -> its digits' candidate cut-outs, left to right.

The stages, each a function below:
1. `flatten_upload` and `binarize`, as for one digit (`preprocess`).
2. `_erase_rules`: ruled lines, underlines and the sides of a form box are strokes much longer than a
   digit is tall; an opening with a long thin kernel finds them, and they leave the mask.
3. `_find_ink_components`: connected components; page edges and frames at the border are dropped.
4. `_group_components`: the digit-sized components are grouped into digits by the one rule that also
   counts digits for `/predict` (`digit_parts`: wide gaps or too wide for one digit); shorter pieces
   (a 5's detached flag, a 7's bar, a broken stroke) join the digit whose columns they share, or the
   nearest one; specks and marks away from the row are dropped.
5. `_split_readings`: a group too wide for one digit may be touching digits. It gets readings of 1, 2,
   ... pieces, cut along lines slanted like the writing at the columns where the least ink crosses;
   the model scores them later (`read_choice`), so that the cut is the one whose digits read best.
6. Every piece of every reading is cut out and canonicalized exactly as one uploaded digit would be.

Boxes are given in the uploaded image's pixels.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from app.pipeline.digit_parts import MIN_DIGIT_GAP_FRACTION, MIN_PART_HEIGHT_RATIO
from app.pipeline.ink import InkLevels, binarize, cut_out, measure_levels
from app.pipeline.preprocess import (
    MIN_DIGIT_EXTENT_FRACTION,
    MIN_DIGIT_EXTENT_PIXELS,
    FlatUpload,
    find_border_artifacts,
    flatten_upload,
)
from digits.canonicalize import canonicalize_digit
from digits.errors import NoDigitFoundError, TooManyDigitsError

# A ruled line, an underline or a box side runs straight for longer than 1.5 digit heights; no stroke
# of a digit does (a 1 is one height long, a 7's bar or a 2's base about half of it).
RULE_LENGTH_HEIGHTS = 1.5
MAX_DIGIT_ASPECT_FOR_REFERENCE = 3.0  # wider components are lines (or many touching digits)
SPECK_HEIGHTS = 0.12  # marks smaller than this (in digit heights) either way are specks
# Digits of one number differ in height (a wide 5 of MNIST is 14 pixels tall beside a 20-pixel 1); a
# 7's bar, a 5's detached flag or a 4's top are shorter than this. A piece near no digit and taller
# than MIN_LONE_PIECE_HEIGHTS is a small digit of its own, not a stray mark.
MIN_PART_HEIGHTS = 0.45
MIN_LONE_PIECE_HEIGHTS = 0.3
MIN_FRAMED_HEIGHT_FRACTION = 0.3
MIN_ROW_OVERLAP_FRACTION = 0.5  # of the shorter height: in the row of the largest part
PIECE_REACH_HEIGHTS = 0.35  # a piece joins a digit at most this far from it, in columns
# Single handwritten digits are at most about as wide as tall (a wide 0, a 2 with a long base): wider
# groups get readings as touching digits. Each touching digit is about 0.6 heights wide.
MIN_SPLIT_ASPECT = 0.7
MAX_ONE_DIGIT_ASPECT = 0.95
WIDE_FACTOR = 1.15
TOUCHING_DIGIT_WIDTH_HEIGHTS = 0.6
MAX_PIECES_PER_GROUP = 4
MAX_PARTS_PER_CLUSTER = 4  # close parts whose groupings into digits are all read (2**(n-1) of them)
TWO_WAY_CUTS = 2  # candidate cuts of a pair: the even one and the emptiest column near the middle
CUT_WINDOW_FRACTION = 0.3  # of a piece's expected width, either side of the evenly spaced cut
MIN_PIECE_INK_FRACTION = 0.1  # a cut leaving less of the group's ink on one side is no reading
MAX_SLANT = 0.5  # horizontal pixels per vertical pixel (~27 degrees)

Box = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True)
class DigitCandidate:
    """One cut-out the model will read: (28, 28) uint8 canonical digit and its box in upload pixels."""

    canonical: np.ndarray
    box: Box


@dataclass(frozen=True)
class Reading:
    """One way to read an ink group: its digits' candidates, left to right, and how they were made.

    Attributes:
        pieces: indices into `SegmentedNumber.candidates`.
        merges: how many times two neighbouring parts were taken as one digit.
        cuts: how many cuts through touching ink it makes.
        excess_width: how much wider than the number's typical digit its uncut digits are, summed, in
            typical digit widths (a digit 1.8 typical widths wide adds 0.8): touching digits read as one.
    """

    pieces: tuple[int, ...]
    merges: int = 0
    cuts: int = 0
    excess_width: float = 0.0


@dataclass(frozen=True)
class SegmentedNumber:
    """An upload's candidates and its ink groups (close parts), left to right, each with its readings.

    Attributes:
        candidates: every distinct cut-out, to be read by the model in one batch.
        groups: per group, the readings among which `read_choice` picks one.
        is_inverted: True when the upload was dark ink on light paper.
    """

    candidates: tuple[DigitCandidate, ...]
    groups: tuple[tuple[Reading, ...], ...]
    is_inverted: bool


def _reference_height(stats: np.ndarray, is_ink: np.ndarray) -> int:
    """The height of the largest ink component that is not line-shaped: one digit's height."""
    width, height, area = stats[:, 2], stats[:, 3], stats[:, 4]
    is_digit_shaped = is_ink & (width <= MAX_DIGIT_ASPECT_FOR_REFERENCE * height)
    pool = is_digit_shaped if is_digit_shaped.any() else is_ink
    return int(height[np.argmax(np.where(pool, area, -1))])


def _find_frames(stats: np.ndarray, is_sizeable: np.ndarray) -> np.ndarray:
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


def _find_ink_components(strong: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W) bool -> labels (H, W) int32, stats (N, 5), is_ink (N,) bool (not background nor a frame)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(strong.view(np.uint8), connectivity=8)
    extents = np.maximum(stats[:, 2], stats[:, 3])
    min_extent = max(MIN_DIGIT_EXTENT_PIXELS, MIN_DIGIT_EXTENT_FRACTION * max(strong.shape))
    is_ink = (np.arange(count) > 0) & ~find_border_artifacts(labels, stats)
    is_ink &= ~_find_frames(stats, is_ink & (extents >= min_extent))
    if not np.any(is_ink & (extents >= min_extent)):
        raise NoDigitFoundError("no digit found: the image holds only specks, or ink along its border")
    return labels, stats, is_ink


def _erase_rules(strong: np.ndarray, digit_height: int) -> np.ndarray:
    """(H, W) bool -> the same mask without straight strokes longer than RULE_LENGTH_HEIGHTS digits."""
    length = max(3, round(RULE_LENGTH_HEIGHTS * digit_height))
    mask = strong.view(np.uint8)
    horizontal = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, length), np.uint8))
    vertical = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((length, 1), np.uint8))
    return strong & ~(horizontal | vertical).astype(bool)


def _find_parts(stats: np.ndarray, is_ink: np.ndarray, digit_height: int) -> list[np.ndarray]:
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
    main = int(np.argmax(np.where(is_sizeable, stats[:, 4], -1)))
    overlap = np.minimum(bottom, bottom[main]) - np.maximum(top, top[main])
    is_in_row = overlap >= MIN_ROW_OVERLAP_FRACTION * np.minimum(height, height[main])
    is_part = is_sizeable & is_in_row & (height >= MIN_PART_HEIGHTS * digit_height)
    parts: dict[int, list[int]] = {int(label): [int(label)] for label in np.flatnonzero(is_part)}
    part_labels = np.flatnonzero(is_part)
    part_left, part_right = left[part_labels], right[part_labels]
    for label in np.flatnonzero(is_sizeable & ~is_part):
        shared = np.minimum(right[label], part_right) - np.maximum(left[label], part_left)
        distance = np.maximum(part_left - right[label], left[label] - part_right)
        nearest = int(np.argmax(shared)) if shared.max() > 0 else int(np.argmin(distance))
        if shared.max() > 0 or distance[nearest] <= PIECE_REACH_HEIGHTS * digit_height:
            parts[int(part_labels[nearest])].append(int(label))
        elif is_in_row[label] and height[label] >= MIN_LONE_PIECE_HEIGHTS * digit_height:
            parts[int(label)] = [int(label)]
    return [np.array(parts[label]) for label in sorted(parts, key=lambda label: left[label])]


def _cluster_parts(stats: np.ndarray, parts: list[np.ndarray], digit_height: int) -> list[list[int]]:
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


def _part_pixels(labels: np.ndarray, stats: np.ndarray, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of a part's ink, from the labels inside its components' joint box."""
    left, top = stats[part, 0].min(), stats[part, 1].min()
    right, bottom = (stats[part, 0] + stats[part, 2]).max(), (stats[part, 1] + stats[part, 3]).max()
    return np.nonzero(np.isin(labels[top:bottom, left:right], part))


def _estimate_slant(group_pixels: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Columns per row of the writing's slant: the median of each digit group's own second moments."""
    slants = []
    for rows, columns in group_pixels:
        row_spread = rows - rows.mean()
        if (variance := float(row_spread @ row_spread)) > 0:
            slants.append(float(row_spread @ (columns - columns.mean())) / variance)
    return float(np.clip(np.median(slants), -MAX_SLANT, MAX_SLANT)) if slants else 0.0


def _cut_positions(profile: np.ndarray, pieces: int) -> list[list[int]]:
    """Projection profile (W',) of a part's ink along the slant -> candidate cut lists for `pieces`.

    The evenly spaced cuts, and the emptiest columns near them: two digits touching at a point leave
    a valley in the profile there; two touching along a stroke (the sides of two 0s) leave none, and
    only the even cut separates them.
    """
    span = len(profile)
    step = span / pieces
    even = [round(index * step) for index in range(1, pieces)]
    if pieces == 2:
        low, high = round(span / 2 - CUT_WINDOW_FRACTION * step), round(span / 2 + CUT_WINDOW_FRACTION * step)
        emptiest = low + np.argsort(profile[low : high + 1], kind="stable")[: TWO_WAY_CUTS - 1]
        return [even, *([int(column)] for column in emptiest if int(column) != even[0])]
    valleys = []
    for middle in even:
        low, high = round(middle - CUT_WINDOW_FRACTION * step), round(middle + CUT_WINDOW_FRACTION * step)
        valleys.append(low + int(np.argmin(profile[low : high + 1])))
    return [even] if valleys == even else [even, valleys]


def _to_upload_box(rows: np.ndarray, columns: np.ndarray, origin: tuple[int, int], scale: float) -> Box:
    top, left = origin[0] + int(rows.min()), origin[1] + int(columns.min())
    bottom, right = origin[0] + int(rows.max()) + 1, origin[1] + int(columns.max()) + 1
    x, y = int(left / scale), int(top / scale)
    return x, y, max(1, round(right / scale) - x), max(1, round(bottom / scale) - y)


@dataclass(frozen=True)
class _Window:
    """One cluster's box (plus a rim) of the flattened image, and its component labels there."""

    flat: np.ndarray
    labels: np.ndarray
    origin: tuple[int, int]  # top, left in working pixels
    levels: InkLevels
    rim_pixels: int
    scale: float

    def read(self, kept: np.ndarray, allowed: np.ndarray | None = None) -> DigitCandidate:
        """The kept ink (H, W) bool of the window -> one candidate digit."""
        rows, columns = np.nonzero(kept)
        crop = cut_out(self.flat, kept, self.levels, self.rim_pixels, allowed)
        box = _to_upload_box(rows, columns, self.origin, self.scale)
        return DigitCandidate(canonicalize_digit(crop), box)

    def members(self, labels: np.ndarray) -> np.ndarray:
        """(H, W) bool: the window's pixels of the given components."""
        return np.isin(self.labels, labels)


def _compositions(count: int) -> list[list[list[int]]]:
    """Every way to cut parts 0..count-1 into runs of neighbours: 2**(count - 1) lists of runs."""
    readings = []
    for cuts in range(2 ** (count - 1)):
        runs, run = [], [0]
        for index in range(1, count):
            if cuts >> (index - 1) & 1:
                runs.append(run)
                run = []
            run.append(index)
        readings.append([*runs, run])
    return readings


def _cuts_into_touching_digits(
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
    most = min(
        MAX_PIECES_PER_GROUP, max(2, round(span / (TOUCHING_DIGIT_WIDTH_HEIGHTS * max(height, digit_height))))
    )
    cuts = []
    for pieces in range(2, most + 1):
        for positions in _cut_positions(profile, pieces):
            piece_of_pixel = np.searchsorted(
                np.array(positions, dtype=np.float64), grid_sheared, side="right"
            )
            sides = [piece_of_pixel == piece for piece in range(pieces)]
            # Each piece must be a digit: enough of the ink, and nearly the part's height.
            if all(_is_digit_piece(kept & side, len(rows), height) for side in sides):
                cuts.append(sides)
    return cuts


def _is_digit_piece(piece: np.ndarray, ink_pixels: int, height: int) -> bool:
    rows = np.flatnonzero(piece.any(axis=1))
    return (
        np.count_nonzero(piece) >= MIN_PIECE_INK_FRACTION * ink_pixels
        and rows[-1] - rows[0] + 1 >= MIN_PART_HEIGHT_RATIO * height
    )


def _cluster_readings(
    window: _Window,
    parts: list[np.ndarray],
    slant: float,
    digit_height: int,
    typical_width: float,
    candidates: list[DigitCandidate],
) -> tuple[Reading, ...]:
    """A cluster of close parts -> its readings: every grouping of the parts into digits, each single
    wide part also cut into touching digits. New cut-outs are appended to `candidates`."""

    def add(kept: np.ndarray, allowed: np.ndarray | None = None) -> int:
        candidates.append(window.read(kept, allowed))
        return len(candidates) - 1

    options_by_run: dict[tuple[int, ...], list[Reading]] = {}
    readings = []
    for runs in _compositions(len(parts)):
        options = []
        for run in map(tuple, runs):
            if run not in options_by_run:
                kept = window.members(np.concatenate([parts[index] for index in run]))
                columns = np.flatnonzero(kept.any(axis=0))
                excess = max(0.0, (columns[-1] - columns[0] + 1) / typical_width - 1.0)
                run_options = [Reading((add(kept),), merges=len(run) - 1, excess_width=excess)]
                if len(run) == 1:
                    run_options += [
                        Reading(tuple(add(kept & side, side) for side in sides), cuts=len(sides) - 1)
                        for sides in _cuts_into_touching_digits(kept, slant, digit_height, typical_width)
                    ]
                options_by_run[run] = run_options
            options.append(options_by_run[run])
        readings += [
            Reading(
                tuple(piece for option in combination for piece in option.pieces),
                merges=sum(option.merges for option in combination),
                cuts=sum(option.cuts for option in combination),
                excess_width=sum(option.excess_width for option in combination),
            )
            for combination in itertools.product(*options)
        ]
    return tuple(readings)


def _window(upload: FlatUpload, labels: np.ndarray, kept: np.ndarray, levels: InkLevels, rim: int) -> _Window:
    rows, columns = np.nonzero(kept)
    top, left = max(0, rows.min() - rim), max(0, columns.min() - rim)
    bottom, right = rows.max() + rim + 1, columns.max() + rim + 1
    window_labels = np.where(kept[top:bottom, left:right], labels[top:bottom, left:right], 0)
    return _Window(upload.flat[top:bottom, left:right], window_labels, (top, left), levels, rim, upload.scale)


def segment_number(gray: np.ndarray, max_digits: int) -> SegmentedNumber:
    """(H, W) uint8 grayscale photo or scan of a number written in one row -> its ink groups' readings.

    Raises:
        NoDigitFoundError: the image is uniform, blank, only specks, or its marks are too faint.
        TooManyDigitsError: more than `max_digits` digits even if every close pair were one digit.
    """
    upload = flatten_upload(gray)
    ink = binarize(upload.flat)
    labels, stats, is_ink = _find_ink_components(ink.strong)
    strong = _erase_rules(ink.strong, _reference_height(stats, is_ink))
    labels, stats, is_ink = _find_ink_components(strong)
    digit_height = _reference_height(stats, is_ink)
    parts = _find_parts(stats, is_ink, digit_height)
    clusters = _cluster_parts(stats, parts, digit_height)
    if len(clusters) > max_digits:
        raise TooManyDigitsError(f"{len(clusters)} digits or more found; at most {max_digits} are read")
    is_kept = np.zeros(len(stats), dtype=bool)
    is_kept[np.concatenate(parts)] = True
    levels = measure_levels(upload.flat, ink, is_kept[labels])
    slant = _estimate_slant([_part_pixels(labels, stats, part) for part in parts])
    # Most parts are one digit each: their median width (with one digit's usual width as a prior, for
    # numbers of one or two parts) is the number's typical digit width.
    part_widths = [
        np.ptp(np.concatenate([stats[part, 0], stats[part, 0] + stats[part, 2]])) for part in parts
    ]
    typical_width = float(np.median([*part_widths, TOUCHING_DIGIT_WIDTH_HEIGHTS * digit_height]))
    candidates: list[DigitCandidate] = []
    groups = []
    for cluster in clusters:
        cluster_parts = [parts[index] for index in cluster]
        members = np.zeros(len(stats), dtype=bool)
        members[np.concatenate(cluster_parts)] = True
        window = _window(upload, labels, members[labels], levels, ink.rim_pixels)
        groups.append(
            _cluster_readings(window, cluster_parts, slant, digit_height, typical_width, candidates)
        )
    return SegmentedNumber(tuple(candidates), tuple(groups), upload.is_inverted)
