"""Grayscale upload of a handwritten number (H, W) uint8 -> its digits' candidate cut-outs, left to right.

The stages:
1. `flatten_upload` and `binarize`, as for one digit (`preprocess`).
2. `number_layout`: rules and frames erased, the digit-sized parts with their pieces, clusters of
   close parts, the writing's slant.
3. The readings of each cluster: every grouping of its parts into digits (a digit broken in two and
   two digits written close look alike), and each wide part also cut into touching digits
   (`touching_cuts`). The model scores them later (`read_choice`).
4. Every piece of every reading is cut out and canonicalized exactly as one uploaded digit would be.

Boxes are given in the uploaded image's pixels.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from app.pipeline.ink import InkLevels, binarize, cut_out, measure_levels
from app.pipeline.number_layout import NumberLayout, labels_of, lay_out_number
from app.pipeline.preprocess import FlatUpload, flatten_upload
from app.pipeline.touching_cuts import cuts_into_touching_digits
from digits.canonicalize import canonicalize_digit
from digits.errors import TooManyDigitsError

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
        candidates: every distinct cut-out; the model reads those the readings need, in batches
            (`read_choice.NumberLooks`).
        groups: per group, the readings among which `read_choice` picks one.
        is_inverted: True when the upload was dark ink on light paper.
    """

    candidates: tuple[DigitCandidate, ...]
    groups: tuple[tuple[Reading, ...], ...]
    is_inverted: bool


def _to_upload_box(ink_box: Box, origin: tuple[int, int], scale: float, upload_shape: tuple[int, int]) -> Box:
    """The box of ink pixels in a window of the working image -> their box in the upload, inside it."""
    box_left, box_top, box_width, box_height = ink_box
    top, left = origin[0] + box_top, origin[1] + box_left
    bottom, right = top + box_height, left + box_width
    height, width = upload_shape
    x, y = min(int(left / scale), width - 1), min(int(top / scale), height - 1)
    right_edge, bottom_edge = min(width, math.ceil(right / scale)), min(height, math.ceil(bottom / scale))
    return x, y, max(1, right_edge - x), max(1, bottom_edge - y)


@dataclass(frozen=True)
class _Window:
    """One cluster's box (plus a rim) of the flattened image, and its component labels there."""

    flat: np.ndarray
    labels: np.ndarray
    origin: tuple[int, int]  # top, left in working pixels
    levels: InkLevels
    rim_pixels: int
    scale: float
    upload_shape: tuple[int, int]
    label_count: int

    def read(self, kept: np.ndarray, allowed: np.ndarray | None = None) -> DigitCandidate:
        """The kept ink (H, W) bool of the window -> one candidate digit."""
        crop = cut_out(self.flat, kept, self.levels, self.rim_pixels, allowed)
        # OpenCV's box of the non-zero pixels: a window's worth of pixel indices is never built.
        ink_box = cv2.boundingRect(kept.view(np.uint8))
        box = _to_upload_box(ink_box, self.origin, self.scale, self.upload_shape)
        return DigitCandidate(canonicalize_digit(crop), box)

    def members(self, labels: np.ndarray) -> np.ndarray:
        """(H, W) bool: the window's pixels of the given components."""
        return labels_of(self.label_count, labels)[self.labels]


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


def _cluster_readings(
    window: _Window, parts: list[np.ndarray], layout: NumberLayout, candidates: list[DigitCandidate]
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
                excess = max(0.0, (columns[-1] - columns[0] + 1) / layout.typical_width - 1.0)
                run_options = [Reading((add(kept),), merges=len(run) - 1, excess_width=excess)]
                if len(run) == 1:
                    run_options += [
                        Reading(tuple(add(kept & side, side) for side in sides), cuts=len(sides) - 1)
                        for sides in cuts_into_touching_digits(
                            kept, layout.slant, layout.digit_height, layout.typical_width
                        )
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


def _window(
    upload: FlatUpload, layout: NumberLayout, kept: np.ndarray, levels: InkLevels, rim: int
) -> _Window:
    """The window around the kept components' joint box (from their stats: no pass over the image)."""
    stats = layout.stats[kept]
    top, left = max(0, stats[:, 1].min() - rim), max(0, stats[:, 0].min() - rim)
    bottom = (stats[:, 1] + stats[:, 3]).max() + rim
    right = (stats[:, 0] + stats[:, 2]).max() + rim
    labels = layout.labels[top:bottom, left:right]
    return _Window(
        upload.flat[top:bottom, left:right],
        np.where(labels_of(len(layout.stats), kept)[labels], labels, 0),
        (top, left),
        levels,
        rim,
        upload.scale,
        upload.upload_shape,
        len(layout.stats),
    )


def segment_number(gray: np.ndarray, max_digits: int) -> SegmentedNumber:
    """(H, W) uint8 grayscale photo or scan of a number written in one row -> its ink groups' readings.

    Raises:
        NoDigitFoundError: the image is uniform, blank, only specks, or its marks are too faint.
        TooManyDigitsError: more than `max_digits` digits even if every close pair were one digit.
    """
    upload = flatten_upload(gray)
    ink = binarize(upload.flat)
    layout = lay_out_number(ink.strong)
    if len(layout.clusters) > max_digits:
        raise TooManyDigitsError(
            f"{len(layout.clusters)} digits or more found; at most {max_digits} are read"
        )
    levels = measure_levels(
        upload.flat, ink, labels_of(len(layout.stats), np.concatenate(layout.parts))[layout.labels]
    )
    candidates: list[DigitCandidate] = []
    groups = []
    for cluster in layout.clusters:
        cluster_parts = [layout.parts[index] for index in cluster]
        window = _window(upload, layout, np.concatenate(cluster_parts), levels, ink.rim_pixels)
        groups.append(_cluster_readings(window, cluster_parts, layout, candidates))
    return SegmentedNumber(tuple(candidates), tuple(groups), upload.is_inverted)
