"""Held-out glyphs come only from fonts no model was trained on (STIX, Pillow's default), never from the
DejaVu or Computer Modern training fonts, and never show a glyph that a person would read as a digit."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import matplotlib
import pytest
from PIL import ImageFont

from testkit import held_out_glyphs
from testkit.held_out_glyphs import (
    EXCLUDED_GLYPHS,
    PILLOW_DEFAULT_FONT,
    HeldOutFontError,
    font_characters,
    held_out_font_files,
    held_out_font_names,
    load_font,
)
from testkit.unsure_sets import GLYPH_KINDS, NON_DIGIT_KINDS, make_non_digit_images

pytestmark = pytest.mark.unit

TRAINING_FONT_PREFIXES = ("DejaVu", "cm")


def is_training_font(path: str | Path) -> bool:
    return Path(path).name.startswith(TRAINING_FONT_PREFIXES)


def test_the_font_files_are_the_stix_text_fonts_bundled_with_matplotlib() -> None:
    files = held_out_font_files()

    assert [path.name for path in files] == [
        "STIXGeneral.ttf",
        "STIXGeneralBol.ttf",
        "STIXGeneralItalic.ttf",
        "STIXGeneralBolIta.ttf",
    ]
    assert all(
        path.is_file() and path.parent == Path(matplotlib.get_data_path()) / "fonts/ttf" for path in files
    )
    assert not any(is_training_font(name) for name in held_out_font_names())
    assert held_out_font_names()[-1] == PILLOW_DEFAULT_FONT


def test_drawing_glyphs_opens_no_training_font(monkeypatch) -> None:
    opened = []
    real_truetype = ImageFont.truetype

    def truetype_recording(font, *args, **kwargs):
        opened.append(font if isinstance(font, io.BytesIO) else str(font))
        return real_truetype(font, *args, **kwargs)

    monkeypatch.setattr(ImageFont, "truetype", truetype_recording)
    load_font.cache_clear()  # loaded by earlier tests, the fonts would not be opened again
    held_out_glyphs._characters_in.cache_clear()
    try:
        images = make_non_digit_images(8 * len(NON_DIGIT_KINDS), seed=11)
    finally:
        load_font.cache_clear()
        held_out_glyphs._characters_in.cache_clear()

    stix_paths = {str(path) for path in held_out_font_files()}
    opened_files = [font for font in opened if not isinstance(font, io.BytesIO)]
    assert set(opened_files) == stix_paths  # every STIX text font, and no other file
    assert len(opened_files) < len(opened)  # Pillow's default font, read from memory
    assert sum(image.kind in GLYPH_KINDS for image in images) == 8 * len(GLYPH_KINDS)


def test_a_training_font_is_refused() -> None:
    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"

    with pytest.raises(HeldOutFontError, match="not a held-out font"):
        load_font(str(dejavu))


def test_a_missing_stix_font_is_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "fonts" / "ttf").mkdir(parents=True)
    monkeypatch.setattr(matplotlib, "get_data_path", lambda: str(tmp_path))

    with pytest.raises(HeldOutFontError, match=r"STIXGeneral\.ttf.*reinstall matplotlib"):
        held_out_font_files()


@pytest.mark.parametrize("font_name", held_out_font_names(), ids=lambda name: Path(name).stem)
def test_no_font_draws_a_digit_or_a_digit_like_glyph(font_name: str) -> None:
    excluded = set("".join(EXCLUDED_GLYPHS.values()))
    letters, symbols = font_characters(font_name, "letter"), font_characters(font_name, "symbol")

    assert len(letters) >= 30 and len(symbols) >= 10
    for character in letters + symbols:
        assert character not in excluded
        assert unicodedata.numeric(character, None) is None, f"{character!r} is a number"
    assert {"O", "o", "I", "l", "Z", "S", "B", "g", "q"}.isdisjoint(letters)


def test_the_glyph_images_carry_no_excluded_character() -> None:
    excluded = set("".join(EXCLUDED_GLYPHS.values()))
    texts = [image.text for image in make_non_digit_images(40 * len(NON_DIGIT_KINDS), seed=3) if image.text]

    assert len(texts) == 40 * len(GLYPH_KINDS)
    assert not excluded & set("".join(texts))
    assert all(2 <= len(text) <= 4 for text in texts[3 :: len(GLYPH_KINDS)])  # the "word" kind
