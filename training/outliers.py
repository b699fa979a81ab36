"""Training digits + a seed -> non-digits (N, 28, 28) uint8 in [0, 255], white on black, canonical as digits.

Outlier exposure (Hendrycks et al. 2019): the model also learns what is *not* one digit. These images
are trained towards the uniform distribution (0.1 for each digit), so the architecture and its softmax
over ten digits stay as they are. Each image is drawn as ink on a larger "paper" canvas and goes, dark on
light like an upload, through the service's own `preprocess_image`: training sees exactly what serving
would give the model for such an upload. Images that serving refuses (blank, specks only) are drawn again.

Kinds, with their shares in `OUTLIER_MIX`:
    glyphs      0.35  letters, symbols, a few Greek letters, made to look written
    digit_runs  0.25  two or three training digits side by side: a number, not a digit
    scribbles   0.15  random Bezier curves, zigzags, rows of loops, two or three strokes of one pen
    textures    0.10  a patch of stripes, hatching, a grid, dots or blotchy noise (grid or lined paper)
    blots       0.10  filled ellipses and blobs, sharp or smudged
    fragments   0.05  a third to a half of a training digit, cut off along a random straight line; few,
                      because a piece scaled up to a whole digit's size may still read as a digit (the
                      top of a 7 is a 7), and the uniform target would then teach doubt about it
Glyphs, scribbles, textures and blots are drawn by `training.outlier_drawings`.

A real digit trained towards uniform would be read less surely. Canonicalization scales whatever is
left to 20 pixels, so a stem of a 4 or 9 becomes a whole 1 and a loop of an 8 a whole 0: an image that
is one upright stroke or one ring is drawn again (`looks_like_one_or_zero`), and no piece of a 1 is cut.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from app.pipeline.preprocess import preprocess_image
from digits.errors import NoDigitFoundError
from training.datasets import DigitSet
from training.outlier_drawings import draw_blot, draw_glyph, draw_scribble, draw_texture

OUTLIER_MIX = {  # people upload letters and numbers far more often than blots
    "glyphs": 0.35,
    "digit_runs": 0.25,
    "scribbles": 0.15,
    "textures": 0.1,
    "blots": 0.1,
    "fragments": 0.05,
}
PAPER_MARGIN_PIXELS = 8  # serving takes ink touching the border for a page edge or a frame
MAX_ATTEMPTS_PER_IMAGE = 50
INK_LEVEL = 128  # a canonical pixel at or above it is ink, for the shape checks
# MNIST's 1s: 95% have a minor/major variance ratio of the ink under 0.1, its 0s' hole is ~half their area.
ONE_STROKE_VARIANCE_RATIO = 0.1
RING_HOLE_AREA_FRACTION = 0.25


def cut_fragment(random: np.random.Generator, digits: DigitSet) -> np.ndarray:
    """What lies on one side of a random straight cut through a training digit: a third to a half of its
    ink (a half, a side, a corner). Never of a 1, whose every piece is a shorter 1.

    Returns:
        (28, 28) uint8: the digit, with the ink on the other side of the cut set to 0.
    """
    image = digits.images[random.choice(np.flatnonzero(digits.labels != 1))]
    angle = random.uniform(0, 2 * np.pi)
    rows, columns = np.indices(image.shape)
    across_cut = (columns * np.cos(angle) + rows * np.sin(angle)).ravel()
    order = np.argsort(across_cut)
    ink_before = np.cumsum(image.ravel()[order], dtype=np.float64) / max(float(image.sum()), 1.0)
    # The cut falls where 1/2 to 2/3 of the ink lies before it: 1/3 to 1/2 lies on the kept side.
    first_kept = order[np.searchsorted(ink_before, random.uniform(1 / 2, 2 / 3))]
    return np.where(across_cut >= across_cut[first_kept], image.ravel(), 0).reshape(image.shape)


def join_digits(random: np.random.Generator, digits: DigitSet) -> np.ndarray:
    """Two or three training digits side by side: overlapping a little, touching, or a small gap apart
    (any wider, and serving would keep only the largest one as the digit).

    Returns:
        (32, W) uint8: each digit's ink columns left to right, up to 4 rows higher or lower than the others.
    """
    picks = random.integers(len(digits), size=random.integers(2, 4))
    pieces = [image[:, image.any(axis=0)] for image in digits.images[picks]]
    canvas = np.zeros((32, sum(piece.shape[1] for piece in pieces) + 8), dtype=np.uint8)
    left = 4
    for piece in pieces:
        top = int(random.integers(0, 5))
        region = canvas[top : top + 28, left : left + piece.shape[1]]
        np.maximum(region, piece, out=region)
        left += piece.shape[1] + int(random.integers(-3, 3))  # the gap: -3 (overlap) to 2 pixels
    return canvas


def looks_like_one_or_zero(image: np.ndarray) -> bool:
    """(28, 28) uint8 canonical image -> whether it is one upright stroke (a 1) or one ring (a 0).

    A stroke: the ink's variance across its main axis under ONE_STROKE_VARIANCE_RATIO of the variance
    along it, the axis within 45 degrees of upright (a dash lies flat, and is no digit). A ring: one
    outline around one hole of at least RING_HOLE_AREA_FRACTION of its area (an A's or an e's is smaller).
    """
    ink = (image >= INK_LEVEL).astype(np.uint8)
    rows, columns = np.nonzero(ink)
    if len(rows) < 3:
        return False
    variances, axes = np.linalg.eigh(np.cov(np.stack([columns, rows]).astype(np.float64)))
    is_upright_stroke = variances[0] < ONE_STROKE_VARIANCE_RATIO * variances[1] and abs(axes[1, 1]) > 0.7
    contours, hierarchy = cv2.findContours(ink, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    is_hole = hierarchy[0][:, 3] >= 0  # contours inside another: the holes of the ink
    if len(contours) != 2 or is_hole.sum() != 1:
        return bool(is_upright_stroke)
    hole, outline = (contours[0], contours[1]) if is_hole[0] else (contours[1], contours[0])
    return bool(
        is_upright_stroke or cv2.contourArea(hole) >= RING_HOLE_AREA_FRACTION * cv2.contourArea(outline)
    )


@dataclass(frozen=True)
class Outliers:
    """Non-digit training images, grouped by kind in `OUTLIER_MIX` order.

    Attributes:
        images: (N, 28, 28) uint8 in [0, 255], white on black, canonical (what serving gives the model).
        kinds: (N,) str, each image's kind.
    """

    images: np.ndarray
    kinds: np.ndarray

    def describe(self) -> dict[str, Any]:
        """How many images of each kind, for the model card and the log."""
        counts = {kind: int(np.count_nonzero(self.kinds == kind)) for kind in OUTLIER_MIX}
        return {"images": len(self.images), "kinds": {kind: count for kind, count in counts.items() if count}}

    def pick_samples(self, per_kind: int) -> tuple[np.ndarray, list[str]]:
        """The first `per_kind` images of each kind (each drawn on its own, so as good as any), captioned."""
        picks = [index for kind in OUTLIER_MIX for index in np.flatnonzero(self.kinds == kind)[:per_kind]]
        return self.images[picks], [str(self.kinds[index]) for index in picks]


def generate_outliers(
    digits: DigitSet, count: int, seed: int, mix: Mapping[str, float] = OUTLIER_MIX
) -> Outliers:
    """Draws `count` non-digits, shared out among the kinds by `mix`.

    Args:
        digits: the training digits (the train split only) that fragments and runs are cut from.
        count: how many images.
        seed: seeds each image together with its kind and number: a seed always gives the same images.
        mix: kind -> share, any weights >= 0 (a kind left out gets no image).

    Returns:
        The images and their kinds.

    Raises:
        ValueError: a kind not in OUTLIER_MIX or no positive share in `mix`.
        RuntimeError: a kind gave no image serving accepts as one non-digit in MAX_ATTEMPTS_PER_IMAGE.
    """
    counts = _share_out(count, mix)
    drawers: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
        "glyphs": draw_glyph,
        "digit_runs": functools.partial(join_digits, digits=digits),
        "scribbles": draw_scribble,
        "fragments": functools.partial(cut_fragment, digits=digits),
        "textures": draw_texture,
        "blots": draw_blot,
    }
    images, kinds = [], []
    for kind_number, kind in enumerate(OUTLIER_MIX):
        for number in range(counts[kind]):
            random = np.random.default_rng([seed, kind_number, number])
            images.append(_draw_accepted(kind, drawers[kind], random))
            kinds.append(kind)
    return Outliers(np.array(images, dtype=np.uint8).reshape(-1, 28, 28), np.array(kinds, dtype=str))


def _share_out(count: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Each kind's share of `count`, rounded by largest remainders so that the shares add up to it."""
    if set(mix) - set(OUTLIER_MIX) or min(mix.values(), default=-1) < 0 or sum(mix.values()) <= 0:
        raise ValueError(f"an outlier mix gives shares >= 0 to kinds of {', '.join(OUTLIER_MIX)}: {mix}")
    exact = np.array([mix.get(kind, 0.0) for kind in OUTLIER_MIX]) * count / sum(mix.values())
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact, kind="stable")[: count - counts.sum()]] += 1
    return dict(zip(OUTLIER_MIX, counts.tolist(), strict=True))


def _draw_accepted(
    kind: str, draw: Callable[[np.random.Generator], np.ndarray], random: np.random.Generator
) -> np.ndarray:
    """Draws until serving finds one mark in the drawing and it is neither a 1 nor a 0 -> (28, 28) uint8."""
    for _ in range(MAX_ATTEMPTS_PER_IMAGE):
        paper = 255 - np.pad(draw(random), PAPER_MARGIN_PIXELS)  # dark ink on light paper, like an upload
        try:
            canonical = preprocess_image(paper).canonical
        except NoDigitFoundError:
            continue  # blank or specks: serving refuses such an upload, so it never reaches the model
        if not looks_like_one_or_zero(canonical):
            return canonical
    raise RuntimeError(
        f"no {kind} image that serving keeps and that is not a 1 or 0 in {MAX_ATTEMPTS_PER_IMAGE} tries"
    )
