"""A random generator -> a non-digit drawing (64, 64) uint8 in [0, 255], white ink on black: a glyph, a
scribble, a blot or a texture.

The kinds of non-digit training images made from nothing (`training.outliers` makes the others from
training digits, and passes every drawing through serving's preprocessing). Each is a pure function of
the generator's stream, so a seed gives the same drawing.

Glyphs come only from the fonts bundled with matplotlib (a pinned dependency): its DejaVu fonts and six
Computer Modern ones. The STIX fonts and Pillow's built-in default font are reserved for a held-out test
set of non-digits, so that it measures how the model refuses glyphs it never saw: never used here. A
glyph that a person could read as a digit is never drawn (`DIGIT_LIKE_GLYPHS`): trained towards the
uniform distribution, a letter O would teach the model to doubt real zeros.
"""

from __future__ import annotations

import functools
import math
import string
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.style_augment import change_stroke_width

PAPER_SIDE_PIXELS = 64  # room for a 36-pixel glyph, slanted and turned, or a 48-pixel scribble
GLYPH_SIZE_PIXELS = 36
# Glyphs a person may read as a digit, and the digit (the Greek ones explain why GREEK lacks them). Some
# are borderline, left out for safety: one slanted or bowed stroke ("/", "(") is how many people write
# a 1, a single-storey g or a q is a 9, an S a 5, a b a 6, an Omega a 0 on feet, and the ampersand
# of the Computer Modern fonts, thickened, an 8.
DIGIT_LIKE_GLYPHS = {
    **dict.fromkeys("OoQDΩθΘϑφΦσ", "0"),
    **dict.fromkeys("Iil|!/\\()ι", "1"),
    **dict.fromkeys("Zzζ", "2"),
    **dict.fromkeys("ε", "3"),
    **dict.fromkeys("Ssς", "5"),
    **dict.fromkeys("bGδ", "6"),
    **dict.fromkeys("B&βγ", "8"),
    **dict.fromkeys("gq", "9"),
}
LETTERS = "".join(letter for letter in string.ascii_letters if letter not in DIGIT_LIKE_GLYPHS)
SYMBOLS = "+-=*#@%?$[]<>~^"
GREEK = "αλμπψωΓΔΛΠΣΨ"
# Computer Modern uses TeX's encodings, not ASCII: cmr10's "<" is "¡", and cmmi10's "!" is an omega.
# Each font draws only the symbols found at their ASCII place (cmti10's "$" is a £, still no digit).
TEXT_SYMBOLS = "+-=*#@%?$[]"
FONT_CHARACTERS = {
    "DejaVu": LETTERS + SYMBOLS + "€×÷±" + GREEK,
    "cmr10": LETTERS + TEXT_SYMBOLS,
    "cmss10": LETTERS + TEXT_SYMBOLS,
    "cmb10": LETTERS + TEXT_SYMBOLS,
    "cmti10": LETTERS + TEXT_SYMBOLS,
    "cmtt10": LETTERS + SYMBOLS,
    "cmmi10": LETTERS + "<>",
}


@functools.cache
def list_glyph_fonts() -> tuple[tuple[Path, str], ...]:
    """(font file, the characters drawn with it) for each font: matplotlib's DejaVu fonts (not the
    Display ones, which hold only large operators such as ∑) and its six Computer Modern text fonts."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    dejavu = [path for path in sorted(folder.glob("DejaVu*.ttf")) if "Display" not in path.name]
    computer_modern = [folder / f"{name}.ttf" for name in FONT_CHARACTERS if name != "DejaVu"]
    return tuple(
        (path, FONT_CHARACTERS["DejaVu" if path in dejavu else path.stem])
        for path in dejavu + computer_modern
    )


@functools.cache
def _load_font(path: Path) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), GLYPH_SIZE_PIXELS)  # a file read: done once per font


def draw_glyph(random: np.random.Generator) -> np.ndarray:
    """A random character of a random font, made to look written.

    Returns:
        (64, 64) uint8 in [0, 255], white ink on black: the glyph with thicker or thinner strokes, a
        slant, a small rotation and an elastic wobble.
    """
    fonts = list_glyph_fonts()
    path, characters = fonts[random.integers(len(fonts))]
    character = characters[random.integers(len(characters))]
    page = Image.new("L", (PAPER_SIDE_PIXELS, PAPER_SIDE_PIXELS), 0)
    middle = PAPER_SIDE_PIXELS // 2
    ImageDraw.Draw(page).text((middle, middle), character, fill=255, font=_load_font(path), anchor="mm")
    # A pen draws one width: a marker (dilated) or a fine liner (eroded, unless that erases the glyph).
    ink = change_stroke_width(np.asarray(page), int(random.choice([0, 0, 2, 3])))
    return _distort_elastically(random, _slant_and_rotate(random, ink))


def _slant_and_rotate(random: np.random.Generator, ink: np.ndarray) -> np.ndarray:
    """Shears by up to 20 degrees either way (a slanted hand), then turns by up to 15, about the middle."""
    shear = np.tan(np.radians(random.uniform(-20, 20)))
    middle = PAPER_SIDE_PIXELS / 2
    rotation = cv2.getRotationMatrix2D((middle, middle), random.uniform(-15, 15), 1.0)
    matrix = rotation @ np.array([[1, -shear, shear * middle], [0, 1, 0], [0, 0, 1]])
    return cv2.warpAffine(ink, matrix, ink.shape[::-1], flags=cv2.INTER_LINEAR, borderValue=0)


def _distort_elastically(random: np.random.Generator, ink: np.ndarray) -> np.ndarray:
    """Simard et al. (2003): a smooth random displacement field, the wobble of a hand (up to ~3 pixels)."""
    sigma_pixels, strength_pixels = 5.0, random.uniform(0, 60)
    shifts = [
        cv2.GaussianBlur(random.uniform(-1, 1, ink.shape).astype(np.float32), (0, 0), sigma_pixels)
        * strength_pixels
        for _ in range(2)
    ]
    rows, columns = np.indices(ink.shape, dtype=np.float32)
    return cv2.remap(ink, columns + shifts[0], rows + shifts[1], cv2.INTER_LINEAR, borderValue=0)


def draw_scribble(random: np.random.Generator) -> np.ndarray:
    """Two or three strokes of one pen: random Bezier curves, zigzags, or rows of loops (a cursive "eee").
    One stroke alone would often be an arc or a line, that is a 0, 1, 6, 7 or 9.

    Returns:
        (64, 64) uint8 in [0, 255], white ink on black.
    """
    ink = np.zeros((PAPER_SIDE_PIXELS, PAPER_SIDE_PIXELS), dtype=np.uint8)
    thickness_pixels = int(random.integers(2, 6))
    for _ in range(random.integers(2, 4)):
        style = random.integers(3)
        if style == 0:
            control_points = random.uniform(0, 1, (random.integers(3, 7), 2))
            degree, t = len(control_points) - 1, np.linspace(0, 1, 100)[:, np.newaxis]
            bernstein = [math.comb(degree, k) * t**k * (1 - t) ** (degree - k) for k in range(degree + 1)]
            curve = np.hstack(bernstein) @ control_points
        elif style == 1:
            curve = random.uniform(0, 1, (random.integers(4, 9), 2))
        else:  # a prolate trochoid: the loops of a cursive "eee" or "lll"
            t = np.linspace(0, 2 * np.pi * random.integers(2, 5), 200)
            curve = np.stack([t - random.uniform(1.5, 3) * np.sin(t), -2 * np.cos(t)], axis=1)
        cv2.polylines(ink, [_fit_in_paper(random, curve)], False, 255, thickness_pixels, cv2.LINE_AA)
    return ink


def _fit_in_paper(random: np.random.Generator, curve: np.ndarray) -> np.ndarray:
    """(K, 2) points -> (K, 1, 2) int32 pixels: turned at random, 24-48 pixels across, near the middle."""
    angle = random.uniform(0, 2 * np.pi)
    turned = curve @ np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned -= (turned.max(axis=0) + turned.min(axis=0)) / 2
    scale = random.uniform(24, 48) / max(float(np.ptp(turned, axis=0).max()), 1e-6)
    center = PAPER_SIDE_PIXELS / 2 + random.uniform(-4, 4, 2)
    return np.round(turned * scale + center).astype(np.int32)[:, np.newaxis]


def draw_blot(random: np.random.Generator) -> np.ndarray:
    """One to three filled ellipses (no thinner than half their length: a thin one is a 1) or
    irregular blobs, sharp or smudged.

    Returns:
        (64, 64) uint8 in [0, 255], white ink on black.
    """
    ink = np.zeros((PAPER_SIDE_PIXELS, PAPER_SIDE_PIXELS), dtype=np.uint8)
    for _ in range(random.integers(1, 4)):
        center = random.uniform(20, 44, 2)
        if random.random() < 0.5:
            length = random.uniform(5, 16)
            axes = (round(length), round(length * random.uniform(0.5, 1)))
            cv2.ellipse(ink, np.round(center).astype(int), axes, random.uniform(0, 180), 0, 360, 255, -1)
        else:  # the hull of random points about a center
            points = np.round(center + random.normal(0, random.uniform(3, 8), (8, 2))).astype(np.int32)
            cv2.fillConvexPoly(ink, cv2.convexHull(points), 255, cv2.LINE_AA)
    smudged = cv2.GaussianBlur(ink, (0, 0), random.uniform(0.5, 3))
    return cv2.normalize(smudged, None, 0, 255, cv2.NORM_MINMAX)


def draw_texture(random: np.random.Generator) -> np.ndarray:
    """A patch of stripes, hatching, a grid, dots or blotchy noise, a rectangle or an ellipse, off the
    page's border (serving drops ink along the border as a page edge).

    Returns:
        (64, 64) uint8 in {0, 255}, white ink on black.
    """
    rows, columns = np.indices((PAPER_SIDE_PIXELS, PAPER_SIDE_PIXELS), dtype=np.float32)
    angle, period = random.uniform(0, np.pi), random.uniform(4, 9)
    along = (columns * np.cos(angle) + rows * np.sin(angle)) % period
    across = (rows * np.cos(angle) - columns * np.sin(angle)) % period
    pattern = random.choice(["stripes", "hatching", "grid", "dots", "noise"])
    if pattern in ("stripes", "hatching"):
        texture = along < period * (0.5 if pattern == "stripes" else 0.25)
    elif pattern == "grid":
        texture = (along < 2) | (across < 2)
    elif pattern == "dots":  # dots close enough that serving keeps them together, not one dot
        texture = (along - period / 2) ** 2 + (across - period / 2) ** 2 < (0.4 * period) ** 2
    else:
        noise = cv2.GaussianBlur(random.uniform(0, 1, rows.shape).astype(np.float32), (0, 0), 1.5)
        texture = noise > np.median(noise)
    patch = np.zeros(rows.shape, dtype=np.uint8)
    middle, half_sides = PAPER_SIDE_PIXELS // 2, np.round(random.uniform(10, 20, 2)).astype(int)
    if random.random() < 0.5:
        cv2.ellipse(patch, (middle, middle), half_sides, 0, 0, 360, 1, -1)
    else:
        top, left = middle - half_sides
        patch[top : middle + half_sides[0], left : middle + half_sides[1]] = 1
    return np.where(texture & patch.astype(bool), 255, 0).astype(np.uint8)
