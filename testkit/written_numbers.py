"""Single digits (28, 28) uint8 white-on-black -> images of whole handwritten numbers made of them, with the
truth: the text, each digit's (x, y, width, height) box and which pixels are whose ink.

A number is n real digits (the caller chooses n) of one source (MNIST, USPS or CVL; a CVL number is
one writer's, as when one person writes a number), laid out as people write: similar heights (each digit
0.9-1.1 of the number's scale), centres level within 8 % of the height, a slant of -15..+15 degrees
shared by all digits, 0.15-0.8 of the mean digit width between ink boxes, margins, the whole 2-4x the
28x28 size (less where the longest side would pass 1600 pixels). In a touching number exactly one
adjacent pair starts 0-0.15 widths overlapped and is pushed together until its inks form one
8-connected component at 0.5 coverage (so at 0.1 too). The slant shears each digit about its own
middle row: the same shear as slanting the whole number, up to sub-pixel shifts, and the gaps are
then measured between the slanted inks, as a reader sees them. The ink is drawn as a scan (grey) or a
phone photo (BGR, uneven light), from a caller's generator: a seed reproduces every image exactly.

Each source has a "train" and a "test" split. Only test splits feed the benchmark
(`bench.read_accuracy`); segmentation thresholds are tuned on train splits, never on test digits.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from testkit.labelled_sets import USPS_PATH
from testkit.photo_like import _illumination_field
from testkit.shared_data import MNIST_DIR, SHARED_DATA_DIR, read_mnist
from testkit.two_digit_numbers import DIGIT_BOX_PIXELS, INK_THRESHOLD, DigitPool, _white_on_black, crop_to_ink
from training.datasets.cvl import writer_of
from training.datasets.folder import list_labelled_files
from training.datasets.usps import load_usps

SOURCE_NAMES = ("mnist", "usps", "cvl")
SPLIT_NAMES = ("train", "test")
RENDERINGS = ("scan", "photo")
CVL_DIR = SHARED_DATA_DIR / "cvl"
MAX_SIDE_PIXELS = 1600
SCALE_RANGE = (2.0, 4.0)  # times the 28x28 size
HEIGHT_FACTOR_RANGE = (0.9, 1.1)  # each digit's size against the number's scale
SEPARATED_GAP_RANGE = (0.15, 0.8)  # between ink boxes, of the mean digit width
TOUCHING_GAP_RANGE = (-0.15, 0.0)
MAX_TOUCH_OVERLAP = 0.5  # how far a touching pair may be pushed into each other, of the mean width
CENTER_JITTER = 0.08  # of the digit height, either way
MAX_SLANT_DEGREES = 15.0
MARGIN_RANGE = (0.2, 0.8)  # each side, of the digit height
TOUCH_THRESHOLD = 0.5  # a mid-grey binarization still sees the pair as one blob
MAX_LAYOUT_ATTEMPTS = 50
# Other layouts of the same digits are tried first, so that a number's digits do not depend on whether
# some pair of them touches easily.
LAYOUTS_PER_DRAW = 5
ILLUMINATION_GRID_PIXELS = 64  # the lighting is smooth: computed coarse, then stretched to the image
DigitBox = tuple[int, int, int, int]  # x, y, width, height in pixels


@dataclass(frozen=True)
class LaidOutNumber:
    """Digits on one canvas.

    Attributes:
        coverage: (H, W) float32 ink coverage in [0, 1].
        ink_labels: (H, W) int8, the index of the digit with the most ink at each pixel of coverage
            >= INK_THRESHOLD, -1 elsewhere.
        boxes: each digit's ink box (coverage >= INK_THRESHOLD), leftmost digit first.
        touching_pair: index of the left digit of the touching pair; None in a separated number.
        scale: the number's size against 28x28 digits; slant_degrees: positive leans right.
    """

    coverage: np.ndarray
    ink_labels: np.ndarray
    boxes: tuple[DigitBox, ...]
    touching_pair: int | None
    scale: float
    slant_degrees: float


@dataclass(frozen=True)
class WrittenNumber:
    """One image of a written number and its truth.

    Attributes:
        image: (H, W) uint8 grey scan or (H, W, 3) uint8 BGR photo, dark ink on light paper.
        text: the digits, left to right ("04021").
        boxes: each digit's ink box (x, y, width, height) in `image`, in the order of `text`.
        source: "mnist", "usps" or "cvl".
        is_touching: one adjacent pair's inks touch (`layout.touching_pair`).
        origins: where each digit comes from ("mnist/test/17", "cvl/train/3/0001-01-06.png").
        rendering: "scan" or "photo".
        layout: the ink before rendering (coverage, whose ink each pixel is, scale, slant).
    """

    image: np.ndarray
    text: str
    boxes: tuple[DigitBox, ...]
    source: str
    is_touching: bool
    origins: tuple[str, ...]
    rendering: str
    layout: LaidOutNumber


def load_digit_pool(source: str, split: str, limit: int | None = None) -> DigitPool:
    """One split of a source from ../shared/data, at most `limit` digits: MNIST's and USPS's first ones,
    CVL's files sorted by writer (so a limit keeps whole writers, the last one perhaps partly).

    Raises:
        ValueError: an unknown source or split.
        training.datasets.DatasetError: the set's files are missing or damaged.
    """
    if source not in SOURCE_NAMES or split not in SPLIT_NAMES:
        raise ValueError(
            f"unknown source {source!r} or split {split!r}: use {SOURCE_NAMES} and {SPLIT_NAMES}"
        )
    if source == "cvl":
        files = list_labelled_files(CVL_DIR / split, f"cvl/{split}")
        files = sorted(files, key=lambda file: (writer_of(file[0]), file[0].name))[:limit]
        scans = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path, _ in files]
        return DigitPool(
            "cvl",
            np.stack([_white_on_black(scan) for scan in scans]),
            np.array([label for _, label in files], dtype=np.int64),
            [str(path.relative_to(SHARED_DATA_DIR)) for path, _ in files],
            np.array([writer_of(path) for path, _ in files], dtype=str),
        )
    if source == "mnist":
        images, labels = read_mnist(MNIST_DIR, split)
    else:
        digit_set = getattr(load_usps(USPS_PATH), split)
        images, labels = digit_set.images, digit_set.labels
    images, labels = images[:limit], labels[:limit]
    return DigitPool(source, images, labels, [f"{source}/{split}/{index}" for index in range(len(labels))])


def pick_digits(pool: DigitPool, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` indices into `pool`, all by one writer where writers are known (repeats only where that
    writer wrote fewer than `count` digits)."""
    candidates = np.arange(len(pool.labels))
    if pool.writers is not None:
        candidates = np.flatnonzero(pool.writers == pool.writers[rng.integers(len(pool.writers))])
    return rng.choice(candidates, size=count, replace=count > len(candidates))


def _choose_scale(crops: list[np.ndarray], rng: np.random.Generator, max_side_pixels: int) -> float:
    """2-4x, lowered so that the widest layout these crops can get fits `max_side_pixels`."""
    widths = np.array([crop.shape[1] for crop in crops], dtype=np.float64)
    largest = HEIGHT_FACTOR_RANGE[1]
    slant_widening = np.tan(np.radians(MAX_SLANT_DEGREES)) * DIGIT_BOX_PIXELS
    margins = 2 * MARGIN_RANGE[1] * DIGIT_BOX_PIXELS
    width = largest * (widths.sum() + len(widths) * slant_widening)
    width += (len(widths) - 1) * SEPARATED_GAP_RANGE[1] * largest * widths.mean() + margins
    height = largest * DIGIT_BOX_PIXELS * (1 + 2 * CENTER_JITTER) + margins
    # The slack absorbs rounding each size and position to whole pixels.
    fitting_scale = (max_side_pixels - 4 * len(crops) - 4) / max(width, height)
    return min(rng.uniform(*SCALE_RANGE), fitting_scale)


def _scale_and_slant(crop: np.ndarray, scale: float, shear: float) -> np.ndarray:
    """Coverage cut to its ink -> enlarged `scale` times, sheared about its middle row (x moves right by
    `shear` pixels per pixel up), cut to its ink again."""
    height = max(1, round(crop.shape[0] * scale))
    width = max(1, round(crop.shape[1] * scale))
    enlarged = np.clip(cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    padding = int(np.ceil(abs(shear) * height / 2)) + 1
    matrix = np.array([[1.0, -shear, padding + shear * height / 2], [0.0, 1.0, 0.0]], dtype=np.float32)
    slanted = cv2.warpAffine(enlarged, matrix, (width + 2 * padding, height), flags=cv2.INTER_LINEAR)
    rows, columns = np.nonzero(slanted >= INK_THRESHOLD)
    return slanted[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]


def _paste_digits(
    digits: Sequence[np.ndarray], lefts: Sequence[int], tops: Sequence[int], size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Digits at their (left, top) on a blank (height, width) canvas -> coverage and ink labels."""
    coverage = np.zeros(size, dtype=np.float32)
    ink_labels = np.full(size, -1, dtype=np.int8)
    for index, (digit, left, top) in enumerate(zip(digits, lefts, tops, strict=True)):
        window = np.s_[top : top + digit.shape[0], left : left + digit.shape[1]]
        is_theirs = (digit >= INK_THRESHOLD) & (digit > coverage[window])
        ink_labels[window][is_theirs] = index
        np.maximum(coverage[window], digit, out=coverage[window])
    return coverage, ink_labels


def _inks_touch(left_digit: np.ndarray, right_digit: np.ndarray, offset: tuple[int, int]) -> bool:
    """Whether two digits, the right one's top-left `offset` (x >= 1, y) from the left one's, have ink
    (>= TOUCH_THRESHOLD) in one 8-connected component."""
    x, y = offset
    top = min(0, y)
    height = max(left_digit.shape[0], y + right_digit.shape[0]) - top
    width = max(left_digit.shape[1], x + right_digit.shape[1])
    coverage, ink_labels = _paste_digits([left_digit, right_digit], [0, x], [-top, y - top], (height, width))
    _, components = cv2.connectedComponents((coverage >= TOUCH_THRESHOLD).astype(np.uint8), connectivity=8)
    shared = np.intersect1d(components[ink_labels == 0], components[ink_labels == 1])
    return bool(np.any(shared > 0))


def _place_digits(
    digits: list[np.ndarray], gaps: np.ndarray, tops: np.ndarray, touching_pair: int | None, mean_width: float
) -> list[int] | None:
    """Each digit's left edge, `gaps` (pixels) after the previous digit's ink; the touching pair pushed
    together until their inks touch. None: they did not touch within MAX_TOUCH_OVERLAP."""
    lefts = [0]
    for index in range(1, len(digits)):
        previous, digit = digits[index - 1], digits[index]
        previous_right = lefts[-1] + previous.shape[1]
        if index - 1 != touching_pair:
            lefts.append(previous_right + max(1, round(gaps[index - 1])))
            continue
        # Pushed no further than the overlap allows, and never past either edge of the left digit, so
        # that the boxes stay in reading order and the next digit can follow this one's right edge.
        lowest = max(
            previous_right - int(MAX_TOUCH_OVERLAP * mean_width),
            lefts[-1] + 1,
            previous_right - digit.shape[1] + 1,
        )
        offset_y = int(tops[index] - tops[index - 1])
        left = previous_right + round(gaps[index - 1])
        while left >= lowest and not _inks_touch(previous, digit, (left - lefts[-1], offset_y)):
            left -= 1
        if left < lowest:
            return None
        lefts.append(left)
    return lefts


def _frame(
    digits: list[np.ndarray], lefts: list[int], tops: np.ndarray, scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, tuple[DigitBox, ...]]:
    """Digits at their (left, top) pixels -> coverage, ink labels and boxes on a canvas that adds margins
    of 0.2-0.8 digit heights on each side."""
    content = np.array(
        [
            max(left + digit.shape[1] for left, digit in zip(lefts, digits, strict=True)),
            max(top + digit.shape[0] for top, digit in zip(tops, digits, strict=True)),
        ]
    )
    margins = np.rint(rng.uniform(*MARGIN_RANGE, size=(2, 2)) * DIGIT_BOX_PIXELS * scale).astype(int)
    width, height = content + margins.sum(axis=0)  # margins: (before, after) x (x, y)
    lefts = [left + int(margins[0, 0]) for left in lefts]
    tops = [int(top + margins[0, 1]) for top in tops]
    coverage, ink_labels = _paste_digits(digits, lefts, tops, (int(height), int(width)))
    boxes = tuple(
        (left, top, digit.shape[1], digit.shape[0])
        for left, top, digit in zip(lefts, tops, digits, strict=True)
    )
    return coverage, ink_labels, boxes


def lay_out_number(
    digits: Sequence[np.ndarray],
    rng: np.random.Generator,
    is_touching: bool,
    max_side_pixels: int = MAX_SIDE_PIXELS,
) -> LaidOutNumber | None:
    """(28, 28) uint8 white-on-black digits -> them written as one number, left to right (see the module
    docstring), its longest side at most `max_side_pixels`. None: in a touching number the chosen
    pair's inks could not be made to touch (the caller tries again)."""
    crops = [crop_to_ink(digit) for digit in digits]
    scale = _choose_scale(crops, rng, max_side_pixels)
    slant_degrees = float(rng.uniform(-MAX_SLANT_DEGREES, MAX_SLANT_DEGREES))
    sizes = scale * rng.uniform(*HEIGHT_FACTOR_RANGE, size=len(crops))
    shear = float(np.tan(np.radians(slant_degrees)))
    placed = [_scale_and_slant(crop, size, shear) for crop, size in zip(crops, sizes, strict=True)]
    mean_width = float(np.mean(np.array([crop.shape[1] for crop in crops]) * sizes))
    gaps = rng.uniform(*SEPARATED_GAP_RANGE, size=len(crops) - 1) * mean_width
    touching_pair = None
    if is_touching:
        touching_pair = int(rng.integers(len(crops) - 1))
        gaps[touching_pair] = rng.uniform(*TOUCHING_GAP_RANGE) * mean_width
    jitters = rng.uniform(-CENTER_JITTER, CENTER_JITTER, size=len(crops)) * DIGIT_BOX_PIXELS * scale
    tops = np.rint(jitters - np.array([digit.shape[0] for digit in placed]) / 2).astype(int)
    lefts = _place_digits(placed, gaps, tops, touching_pair, mean_width)
    if lefts is None:
        return None
    coverage, ink_labels, boxes = _frame(placed, lefts, tops - tops.min(), scale, rng)
    return LaidOutNumber(coverage, ink_labels, boxes, touching_pair, float(scale), slant_degrees)


def render_scan(coverage: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 ink coverage in [0, 1] -> (H, W) uint8 grey scan: ink 15-70 on paper 225-250,
    blurred (sigma 0.3-0.8 pixel), sensor noise (sigma 1-4 levels)."""
    paper, ink = rng.uniform(225.0, 250.0), rng.uniform(15.0, 70.0)
    page = (paper + (ink - paper) * coverage).astype(np.float32)
    page = cv2.GaussianBlur(page, (0, 0), rng.uniform(0.3, 0.8))
    page += rng.uniform(1.0, 4.0) * rng.standard_normal(page.shape, dtype=np.float32)
    return np.clip(np.rint(page), 0, 255).astype(np.uint8)


def render_photo(coverage: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 ink coverage in [0, 1] -> (H, W, 3) uint8 BGR phone photo, as
    `testkit.photo_like`: off-white paper, a dark (often bluish) pen, a light gradient and a soft
    shadow, blur (sigma 0.6-1.4 pixel) and noise (sigma 2-7 levels). Callers JPEG-encode it."""
    paper_bgr = rng.uniform(205.0, 245.0) - rng.uniform(0.0, 12.0, size=3)
    pen_bgr = rng.uniform(15.0, 70.0, size=3) + np.array([rng.uniform(0.0, 50.0), 0.0, 0.0])
    ink = coverage[..., None]
    page = (paper_bgr * (1.0 - ink) + pen_bgr * ink).astype(np.float32)
    lighting = _illumination_field(ILLUMINATION_GRID_PIXELS, rng)
    page *= cv2.resize(lighting, coverage.shape[::-1], interpolation=cv2.INTER_LINEAR)[..., None]
    page = cv2.GaussianBlur(page, (0, 0), rng.uniform(0.6, 1.4))
    page += rng.uniform(2.0, 7.0) * rng.standard_normal(page.shape, dtype=np.float32)
    return np.clip(np.rint(page), 0, 255).astype(np.uint8)


_RENDERERS = {"scan": render_scan, "photo": render_photo}


def write_number(
    pool: DigitPool,
    digit_count: int,
    rng: np.random.Generator,
    is_touching: bool = False,
    rendering: str = "scan",
) -> WrittenNumber:
    """A number of `digit_count` digits of `pool`, drawn as a "scan" or a "photo".

    Raises:
        ValueError: fewer than 1 digit (2 for a touching number), or an unknown rendering.
        RuntimeError: no touching layout in MAX_LAYOUT_ATTEMPTS draws of digits (not seen in practice).
    """
    if digit_count < 1 + int(is_touching) or rendering not in _RENDERERS:
        raise ValueError(f"cannot write {digit_count} digits (touching: {is_touching}) as {rendering!r}")
    for attempt in range(MAX_LAYOUT_ATTEMPTS):
        if attempt % LAYOUTS_PER_DRAW == 0:
            indices = pick_digits(pool, digit_count, rng)
        layout = lay_out_number([pool.images[index] for index in indices], rng, is_touching)
        if layout is not None:
            return WrittenNumber(
                image=_RENDERERS[rendering](layout.coverage, rng),
                text="".join(str(pool.labels[index]) for index in indices),
                boxes=layout.boxes,
                source=pool.name,
                is_touching=is_touching,
                origins=tuple(pool.origins[index] for index in indices),
                rendering=rendering,
                layout=layout,
            )
    raise RuntimeError(
        f"{pool.name}: no touching layout of {digit_count} digits in {MAX_LAYOUT_ATTEMPTS} draws"
    )


def write_numbers(
    pools: Sequence[DigitPool], numbers_per_group: int, seed: int, digit_counts: tuple[int, int] = (3, 8)
) -> list[WrittenNumber]:
    """`numbers_per_group` separated numbers, then as many touching ones, of `digit_counts[0]` to
    `digit_counts[1] - 1` digits: the pools in turn, and each pool's numbers as scans and photos in turn.
    The tuning and validation benchmarks write theirs with it; `seed` reproduces every image."""
    rng = np.random.default_rng(seed)
    return [
        write_number(
            pools[index % len(pools)],
            int(rng.integers(*digit_counts)),
            rng,
            is_touching=is_touching,
            rendering=RENDERINGS[(index // len(pools)) % len(RENDERINGS)],
        )
        for is_touching, index in itertools.product((False, True), range(numbers_per_group))
    ]
