"""Held-out images the service should answer "unsure" on -> PNG uploads (64-240 px a side), each with
its kind: non-digits (letters, symbols, scribbles, textures) and two-digit numbers.

Nothing here comes from what the model is trained on (its non-digit images are drawn with the DejaVu
and cm* fonts, Bezier scribbles, blots, digit fragments, digits side by side, noise, stripes and
grids, all from training digits): the glyphs use other fonts (`testkit.held_out_glyphs`), the
scribbles and textures other generators (`testkit.held_out_drawings`), and the two-digit numbers are
made of MNIST test and CVL test digits only.

Every image is drawn as an upload would look: ink on paper (dark on light; 15 % of the non-digits
light on dark, like a blackboard or an inverted scan), lit by a gentle gradient, a little blurred,
with sensor noise, half of them with a colour cast. Image `i` of a set depends only on the seed and
`i`, so a seed reproduces every image and a larger count only adds images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from testkit.held_out_drawings import DRAWINGS
from testkit.held_out_glyphs import PILLOW_DEFAULT_FONT, font_characters, held_out_font_names, place_text
from testkit.images import encode_png
from testkit.two_digit_numbers import Box, DigitPool, lay_out_pair, load_test_digit_pools

NON_DIGIT_SET = "non_digit"
TWO_DIGIT_SET = "two_digits"
GLYPH_KINDS = ("stix_letter", "stix_symbol", "pillow_glyph", "word")
NON_DIGIT_KINDS = GLYPH_KINDS + tuple(DRAWINGS)
CANVAS_MIN_SIDE_PIXELS = 64
CANVAS_MAX_SIDE_PIXELS = 240
CANVAS_SIDE_RANGE_PIXELS = (CANVAS_MIN_SIDE_PIXELS, CANVAS_MAX_SIDE_PIXELS)
LIGHT_ON_DARK_FRACTION = 0.15
NOISE_FIELD_SEED = 20261202
_SET_SEED_PARTS = {NON_DIGIT_SET: 0, TWO_DIGIT_SET: 1}


@dataclass(frozen=True)
class HeldOutImage:
    """One held-out upload and what it shows.

    Attributes:
        upload: PNG file bytes, (height, width) grey or (height, width, 3) BGR, 8-bit.
        kind: one of NON_DIGIT_KINDS, or "two_digits_<pool>" ("two_digits_mnist", "two_digits_cvl").
        width_pixels, height_pixels: the image's size, each in [64, 240].
        is_light_on_dark: light ink on a dark background.
        text: the characters drawn (glyph kinds only).
        labels: the (left, right) digits of a two-digit number.
        origins: where each of those digits comes from ("mnist/test/<index>", "cvl/test/<digit>/<file>").
        digit_boxes: each digit's (left, top, right, bottom) box in the image, left digit first.
    """

    upload: bytes
    kind: str
    width_pixels: int
    height_pixels: int
    is_light_on_dark: bool = False
    text: str | None = None
    labels: tuple[int, int] | None = None
    origins: tuple[str, str] | None = None
    digit_boxes: tuple[Box, Box] | None = None


def set_of_kind(kind: str) -> str:
    """The set a kind belongs to: NON_DIGIT_SET or TWO_DIGIT_SET."""
    return NON_DIGIT_SET if kind in NON_DIGIT_KINDS else TWO_DIGIT_SET


def image_rng(seed: int, set_name: str, index: int) -> np.random.Generator:
    """The generator of image `index` of a set: independent of how many images are made."""
    return np.random.default_rng([seed, _SET_SEED_PARTS[set_name], index])


@functools.cache
def _noise_field() -> np.ndarray:
    """(480, 480, 3) float32 standard normal noise: each image takes a window of it at a random spot,
    which costs a slice instead of drawing (H, W, 3) normal numbers (most of an image's time)."""
    side = 2 * CANVAS_MAX_SIDE_PIXELS
    return np.random.default_rng(NOISE_FIELD_SEED).standard_normal((side, side, 3), dtype=np.float32)


def render_upload(coverage: np.ndarray, rng: np.random.Generator, is_light_on_dark: bool = False) -> bytes:
    """(H, W) float32 ink coverage in [0, 1] -> PNG bytes of it as ink on paper, photographed or scanned.

    Paper 195-245 and ink 10-60 grey levels (swapped when `is_light_on_dark`), a lighting gradient
    that darkens up to 15 %, a Gaussian blur of sigma 0.4-1.0 pixel, noise of sigma 1.5-5 levels; half
    of the images get a colour cast of up to 8 levels per channel and are stored as BGR.
    """
    paper, ink = rng.uniform(195.0, 245.0), rng.uniform(10.0, 60.0)
    if is_light_on_dark:
        paper, ink = 255.0 - paper, 255.0 - ink
    page = paper + (ink - paper) * coverage.astype(np.float32)
    height, width = coverage.shape
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * np.arange(width, dtype=np.float32) / width
    ramp = ramp + np.sin(angle) * np.arange(height, dtype=np.float32)[:, None] / height
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    page *= 1.0 - rng.uniform(0.0, 0.15) * ramp
    page = cv2.GaussianBlur(page, (0, 0), rng.uniform(0.4, 1.0))
    if rng.random() < 0.5:
        page = page[..., None] + rng.uniform(-8.0, 8.0, size=3).astype(np.float32)
    top, left = rng.integers(0, CANVAS_MAX_SIDE_PIXELS + 1, size=2)
    noise = _noise_field()[top : top + height, left : left + width]
    page += rng.uniform(1.5, 5.0) * (noise if page.ndim == 3 else noise[..., 0])
    page += 0.5  # rounds, as the cast below truncates
    return encode_png(np.clip(page, 0, 255, out=page).astype(np.uint8))


def _glyph_text(kind: str, rng: np.random.Generator) -> tuple[str, str]:
    """A font and the text to write in it, for a glyph kind."""
    fonts = held_out_font_names()
    stix_fonts = [name for name in fonts if name != PILLOW_DEFAULT_FONT]
    if kind == "word":
        font = fonts[rng.integers(len(fonts))]
        letters = font_characters(font, "letter")
        return font, "".join(letters[rng.integers(len(letters))] for _ in range(rng.integers(2, 5)))
    font = PILLOW_DEFAULT_FONT if kind == "pillow_glyph" else stix_fonts[rng.integers(len(stix_fonts))]
    is_letter = kind == "stix_letter" or (kind == "pillow_glyph" and rng.random() < 0.5)
    characters = font_characters(font, "letter" if is_letter else "symbol")
    return font, characters[rng.integers(len(characters))]


def make_non_digit_image(seed: int, index: int) -> HeldOutImage:
    """Image `index` of the non-digit set of `seed`: kind NON_DIGIT_KINDS[index % len(NON_DIGIT_KINDS)]."""
    rng = image_rng(seed, NON_DIGIT_SET, index)
    kind = NON_DIGIT_KINDS[index % len(NON_DIGIT_KINDS)]
    width = int(rng.integers(CANVAS_MIN_SIDE_PIXELS, CANVAS_MAX_SIDE_PIXELS + 1))
    height = int(
        np.clip(round(width * rng.uniform(0.67, 1.5)), CANVAS_MIN_SIDE_PIXELS, CANVAS_MAX_SIDE_PIXELS)
    )
    text = None
    if kind in GLYPH_KINDS:
        font, text = _glyph_text(kind, rng)
        coverage = place_text(text, font, (height, width), rng)
    else:
        coverage = DRAWINGS[kind]((height, width), rng)
    is_light_on_dark = bool(rng.random() < LIGHT_ON_DARK_FRACTION)
    upload = render_upload(coverage, rng, is_light_on_dark)
    return HeldOutImage(upload, kind, width, height, is_light_on_dark=is_light_on_dark, text=text)


def make_non_digit_images(count: int, seed: int) -> list[HeldOutImage]:
    """`count` non-digit images, the kinds in turn (so each kind gets count / len(NON_DIGIT_KINDS))."""
    return [make_non_digit_image(seed, index) for index in range(count)]


def make_two_digit_images(count: int, seed: int, pools: list[DigitPool] | None = None) -> list[HeldOutImage]:
    """`count` two-digit numbers written dark on light, the pools in turn (default: MNIST test, CVL test).

    Raises:
        training.datasets.DatasetError: a test set under ../shared/data is missing or damaged.
    """
    pools = pools if pools is not None else load_test_digit_pools()
    images = []
    for index in range(count):
        rng = image_rng(seed, TWO_DIGIT_SET, index)
        pool = pools[index % len(pools)]
        first, second = pool.pick_pair(rng)
        pair = lay_out_pair(pool.images[first], pool.images[second], rng, CANVAS_SIDE_RANGE_PIXELS)
        height, width = pair.coverage.shape
        images.append(
            HeldOutImage(
                upload=render_upload(pair.coverage, rng),
                kind=f"two_digits_{pool.name}",
                width_pixels=width,
                height_pixels=height,
                labels=(int(pool.labels[first]), int(pool.labels[second])),
                origins=(pool.origins[first], pool.origins[second]),
                digit_boxes=pair.boxes,
            )
        )
    return images
