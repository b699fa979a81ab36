"""Letters and symbols in fonts no model was trained on -> ink coverage (H, W) float32 in [0, 1].

The non-digit images the model is trained to answer "unsure" on are drawn with the DejaVu and the
Computer Modern (cm*) fonts bundled with matplotlib; the held-out ones are drawn here with the other
fonts that come with the same libraries: the four STIX text fonts bundled with matplotlib and
Pillow's built-in default font (Aileron Regular, `ImageFont.load_default(size=...)`). No DejaVu or
cm* file is ever opened.

Glyphs that a person would read as a digit are never drawn (`EXCLUDED_GLYPHS`): answering 0 for a
letter O is not an error, so such glyphs would only blur what the benchmark measures.
"""

from __future__ import annotations

import functools
import io
import string
import unicodedata
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont, features

from testkit.held_out_drawings import MARGIN_FRACTION
from training.outlier_drawings import DIGIT_LIKE_GLYPHS

STIX_TEXT_FONT_NAMES = (
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
)
PILLOW_DEFAULT_FONT = "pillow-default"  # Pillow's built-in font, which has no file of its own
RENDER_SIZE_PIXELS = 96  # glyphs are drawn once at this em size, then resized like a photo would be

# Read as a digit by a person, so never drawn (grouped by the digit they pass for). Includes every
# glyph that training's outlier generator leaves out as digit-like (`DIGIT_LIKE_GLYPHS` in
# training/outlier_drawings.py): the model is never taught that those are not digits.
# Training's list (`DIGIT_LIKE_GLYPHS`) owns which glyphs read as digits; beyond it, lookalikes only the
# held-out fonts draw: a Greek capital O, slashed and struck circles (a slashed zero), bars (∥ reads 11).
HELD_OUT_LOOKALIKES = {"0": "ΟοøØ∅○◦∘°", "1": "Ιıℓ∣¦∥‖", "2": "Ζ", "6": "∂", "8": "Β"}
EXCLUDED_GLYPHS = {
    digit: "".join(glyph for glyph, reads_as in DIGIT_LIKE_GLYPHS.items() if reads_as == digit)
    + HELD_OUT_LOOKALIKES.get(digit, "")
    for digit in "0123456789"
    if digit in DIGIT_LIKE_GLYPHS.values() or digit in HELD_OUT_LOOKALIKES
}
_EXCLUDED = frozenset("".join(EXCLUDED_GLYPHS.values()))
_LATIN = string.ascii_uppercase + string.ascii_lowercase
_GREEK = "αβγδεζηθικλμνξοπρστυφχψωΓΔΘΛΞΠΣΦΨΩ"
# Symbols with a body of ink: no dots, commas, quotes or lone dashes, which are specks once photographed.
_SYMBOLS = "+×÷=≠±<>≤≥≈≡∞#$%&@*?!¶§€£¥√∑∏∫∇∆∀∃∈∩∪⊂⊃∧∨¬∠⊥∝⊕⊗★♠♣♥♦♪→←↑↓⇒⇔↔{}[]()"


class HeldOutFontError(RuntimeError):
    """A held-out font cannot be found or loaded where matplotlib and Pillow should provide it."""


def held_out_font_files() -> list[Path]:
    """The STIX text fonts bundled with matplotlib, in `STIX_TEXT_FONT_NAMES` order.

    Raises:
        HeldOutFontError: one of them is missing from matplotlib's data folder.
    """
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    paths = [folder / name for name in STIX_TEXT_FONT_NAMES]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise HeldOutFontError(
            f"held-out fonts missing: {', '.join(missing)}; matplotlib ships the STIX fonts in "
            "mpl-data/fonts/ttf (reinstall matplotlib)"
        )
    return paths


def held_out_font_names() -> list[str]:
    """Every held-out font: the STIX files' paths, then `PILLOW_DEFAULT_FONT`."""
    return [str(path) for path in held_out_font_files()] + [PILLOW_DEFAULT_FONT]


@functools.lru_cache(maxsize=8)
def load_font(name: str) -> ImageFont.FreeTypeFont:
    """A font of `held_out_font_names()` at RENDER_SIZE_PIXELS.

    Raises:
        HeldOutFontError: Pillow lacks FreeType (its default font then has no sizes), or `name` is not
            a held-out font.
    """
    if name == PILLOW_DEFAULT_FONT:
        if not features.check("freetype2"):
            raise HeldOutFontError("Pillow was built without FreeType: its default font cannot be sized")
        return ImageFont.load_default(size=RENDER_SIZE_PIXELS)
    if name not in held_out_font_names():
        raise HeldOutFontError(f"{name} is not a held-out font (see held_out_font_names)")
    return ImageFont.truetype(name, RENDER_SIZE_PIXELS)


@functools.lru_cache(maxsize=8)
def _characters_in(name: str) -> frozenset[str]:
    font = load_font(name)
    source = io.BytesIO(font.path.getvalue()) if isinstance(font.path, io.BytesIO) else font.path
    return frozenset(chr(code) for code in TTFont(source, lazy=True).getBestCmap())


def _is_drawable(character: str) -> bool:
    return character not in _EXCLUDED and unicodedata.numeric(character, None) is None


def font_characters(name: str, kind: str) -> str:
    """The characters of `kind` ("letter" or "symbol") that font `name` holds, excluded ones left out.

    Letters are Latin and Greek; the Pillow default font has Latin letters and ASCII symbols only.
    """
    wanted = _LATIN + _GREEK if kind == "letter" else _SYMBOLS
    present = _characters_in(name)
    return "".join(character for character in wanted if character in present and _is_drawable(character))


def _crop_to_ink(coverage: np.ndarray) -> np.ndarray:
    rows, columns = np.nonzero(coverage > 0.1)
    return coverage[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]


def render_text(text: str, font_name: str, angle_degrees: float = 0.0) -> np.ndarray:
    """`text` in the font, turned by `angle_degrees` -> (h, w) float32 ink coverage in [0, 1], cropped
    to its ink, at the em size RENDER_SIZE_PIXELS (an "x" stays about half as tall as an "A")."""
    font = load_font(font_name)
    left, top, right, bottom = font.getbbox(text)
    margin = (right - left + bottom - top) // 2  # room for the turned corners
    image = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), 0)
    ImageDraw.Draw(image).text((margin - left, margin - top), text, fill=255, font=font)
    turned = image.rotate(angle_degrees, resample=Image.Resampling.BILINEAR)
    return _crop_to_ink(np.asarray(turned, dtype=np.float32) / 255.0)


def place_text(text: str, font_name: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """`text` written somewhere on a (height, width) canvas -> (height, width) float32 coverage.

    Its em size is 0.45-0.95 of the canvas's shorter side (shrunk to fit), turned by up to 8 degrees;
    it keeps off the canvas's edges (`MARGIN_FRACTION`).
    """
    height, width = size
    glyph = render_text(text, font_name, rng.uniform(-8.0, 8.0))
    scale = rng.uniform(0.45, 0.95) * min(size) / RENDER_SIZE_PIXELS
    scale = min(scale, 0.9 * width / glyph.shape[1], 0.9 * height / glyph.shape[0])
    glyph_size = (max(1, round(glyph.shape[1] * scale)), max(1, round(glyph.shape[0] * scale)))
    glyph = cv2.resize(glyph, glyph_size, interpolation=cv2.INTER_AREA)
    margins = np.rint(MARGIN_FRACTION * np.array(size)).astype(int)
    room = np.maximum(np.array(size) - glyph.shape - 2 * margins, 0)
    top, left = margins + rng.integers(0, room + 1)
    coverage = np.zeros(size, dtype=np.float32)
    coverage[top : top + glyph.shape[0], left : left + glyph.shape[1]] = glyph
    return coverage
