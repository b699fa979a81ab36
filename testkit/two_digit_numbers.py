"""Test-split digits (28, 28) uint8 white-on-black -> two of them side by side as one written number,
(H, W) float32 ink coverage in [0, 1] with each digit's box.

Only test splits are used: the 10,000 MNIST test digits and CVL test (60 writers no model was trained
on; both digits of a CVL number come from one writer, as when one person writes a number). The pair is
laid out as people write numbers: similar heights (each digit scaled by 0.93-1.07 of the pair's
scale), centers level within 8 % of the height, a gap between the ink boxes of 0 to 0.6 of the mean
digit width (0: the boxes touch, and strokes may too), and the whole enlarged 2-4x.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from testkit.labelled_sets import CVL_TEST_DIR
from testkit.shared_data import SHARED_DATA_DIR, read_mnist
from training.datasets.cvl import writer_of
from training.datasets.folder import list_labelled_files

INK_THRESHOLD = 0.1  # coverage from which a pixel counts as the digit's ink (its box is cut there)
PAPER_NOISE_LEVELS = 12  # a CVL pixel this close to the paper's level is paper
DIGIT_BOX_PIXELS = 20  # MNIST and CVL digits fit a 20x20 box inside their 28x28 image
ROUNDING_SLACK_PIXELS = 4
Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels; right and bottom excluded


@dataclass(frozen=True)
class DigitPool:
    """The digits of one test split.

    Attributes:
        name: "mnist" or "cvl".
        images: (N, 28, 28) uint8, white ink on black.
        labels: (N,) int64 in 0..9.
        origins: N strings naming each digit's source ("mnist/test/17", "cvl/test/3/0001-01-06.png").
        writers: (N,) str, who wrote each digit; None where the set does not say (MNIST).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    origins: list[str]
    writers: np.ndarray | None = None

    def pick_pair(self, rng: np.random.Generator) -> tuple[int, int]:
        """Two different digits' indices, by one writer where writers are known."""
        candidates = np.arange(len(self.labels))
        if self.writers is not None:
            candidates = np.flatnonzero(self.writers == self.writers[rng.integers(len(self.writers))])
        first, second = rng.choice(candidates, size=2, replace=False)
        return int(first), int(second)


def _white_on_black(scan: np.ndarray) -> np.ndarray:
    """A (28, 28) uint8 dark-on-light scan -> (28, 28) uint8 white ink on black, ink stretched to 255."""
    darkness = np.median(scan) - scan.astype(np.float32)
    darkness[darkness < PAPER_NOISE_LEVELS] = 0.0
    return np.rint(255.0 * darkness / max(float(darkness.max()), 1.0)).astype(np.uint8)


def load_test_digit_pools() -> list[DigitPool]:
    """The MNIST test and CVL test digits from ../shared/data, in that order.

    Raises:
        training.datasets.DatasetError: a set's files are missing or damaged.
    """
    mnist_images, mnist_labels = read_mnist(split="test")
    mnist = DigitPool(
        "mnist", mnist_images, mnist_labels, [f"mnist/test/{index}" for index in range(len(mnist_labels))]
    )
    files = list_labelled_files(CVL_TEST_DIR, "cvl/test")
    scans = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path, _ in files]
    cvl = DigitPool(
        "cvl",
        np.stack([_white_on_black(scan) for scan in scans]),
        np.array([label for _, label in files], dtype=np.int64),
        [str(path.relative_to(SHARED_DATA_DIR)) for path, _ in files],
        np.array([writer_of(path) for path, _ in files], dtype=str),
    )
    return [mnist, cvl]


def crop_to_ink(digit: np.ndarray) -> np.ndarray:
    """(28, 28) uint8 white-on-black -> float32 coverage in [0, 1] cut to the box of its ink."""
    coverage = digit.astype(np.float32) / 255.0
    rows, columns = np.nonzero(coverage >= INK_THRESHOLD)
    return coverage[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]


@dataclass(frozen=True)
class LaidOutPair:
    """Two digits on one canvas: coverage (H, W) float32 in [0, 1], boxes left digit first."""

    coverage: np.ndarray
    boxes: tuple[Box, Box]


def _paste(digits: list[np.ndarray], lefts: np.ndarray, tops: np.ndarray, canvas: np.ndarray) -> LaidOutPair:
    """Digit coverages at their (left, top) pixels on a blank canvas of (width, height) pixels."""
    coverage = np.zeros((canvas[1], canvas[0]), dtype=np.float32)
    boxes = []
    for digit, left, top in zip(digits, lefts, tops, strict=True):
        right, bottom = left + digit.shape[1], top + digit.shape[0]
        region = coverage[top:bottom, left:right]
        np.maximum(region, np.clip(digit, 0.0, 1.0), out=region)
        boxes.append((int(left), int(top), int(right), int(bottom)))
    return LaidOutPair(coverage, (boxes[0], boxes[1]))


def lay_out_pair(
    first: np.ndarray, second: np.ndarray, rng: np.random.Generator, side_range_pixels: tuple[int, int]
) -> LaidOutPair:
    """Two (28, 28) uint8 white-on-black digits -> `first` then `second` written as one number.

    The canvas adds a margin of 0.15-0.6 digit heights on each side; the scale (2-4x) is lowered where
    the canvas would pass the largest side, and a canvas under the smallest side is widened (the
    number then sits at a random spot on it).
    """
    crops = [crop_to_ink(digit) for digit in (first, second)]
    sizes = [np.array(crop.shape[::-1]) * rng.uniform(0.93, 1.07) for crop in crops]  # (width, height) at 1x
    gap = rng.uniform(0.0, 0.6) * (sizes[0][0] + sizes[1][0]) / 2
    center_offset = rng.uniform(-0.08, 0.08) * DIGIT_BOX_PIXELS
    near_margins, far_margins = rng.uniform(0.15, 0.6, size=(2, 2)) * DIGIT_BOX_PIXELS  # (x, y) each
    span = np.array([sizes[0][0] + gap + sizes[1][0], max(sizes[0][1], sizes[1][1]) + abs(center_offset)])
    smallest_side, largest_side = side_range_pixels
    # The slack absorbs rounding each size and position to whole pixels.
    largest_scales = (largest_side - ROUNDING_SLACK_PIXELS) / (near_margins + span + far_margins)
    scale = min(rng.uniform(2.0, 4.0), *largest_scales)
    digits = [
        cv2.resize(
            crop, tuple(np.maximum(np.rint(size * scale), 1).astype(int)), interpolation=cv2.INTER_CUBIC
        )
        for crop, size in zip(crops, sizes, strict=True)
    ]
    lefts = np.array([0, digits[0].shape[1] + round(gap * scale)])
    middles = (np.array([-center_offset, center_offset]) / 2 + span[1] / 2) * scale
    tops = np.rint(middles - [digits[0].shape[0] / 2, digits[1].shape[0] / 2]).astype(int)
    tops -= tops.min()
    content = np.array(
        [lefts[1] + digits[1].shape[1], max(tops[0] + digits[0].shape[0], tops[1] + digits[1].shape[0])]
    )
    needed = content + np.rint((near_margins + far_margins) * scale).astype(int)
    canvas = np.maximum(needed, smallest_side)  # (width, height)
    origin = np.rint(near_margins * scale).astype(int) + rng.integers(0, canvas - needed + 1)
    return _paste(digits, lefts + origin[0], tops + origin[1], canvas)
