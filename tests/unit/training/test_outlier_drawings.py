"""Non-digit drawings come from allowed fonts only, never draw a glyph that reads as a digit, and each
kind is a reproducible white-on-black page with ink on it."""

from __future__ import annotations

import string
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import ImageFont

from training import outlier_drawings
from training.outlier_drawings import (
    DIGIT_LIKE_GLYPHS,
    PAPER_SIDE_PIXELS,
    draw_blot,
    draw_glyph,
    draw_scribble,
    draw_texture,
    list_glyph_fonts,
)

pytestmark = pytest.mark.unit

FONT_FOLDER = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
COMPUTER_MODERN_FONTS = {"cmr10", "cmss10", "cmtt10", "cmb10", "cmti10", "cmmi10"}
DRAWERS = [draw_glyph, draw_scribble, draw_blot, draw_texture]


def is_allowed_font(path: Path) -> bool:
    """matplotlib's DejaVu Sans, Sans Mono and Serif, or one of its six Computer Modern text fonts."""
    is_dejavu = path.name.startswith(("DejaVuSans", "DejaVuSerif"))
    return path.parent == FONT_FOLDER and (is_dejavu or path.stem in COMPUTER_MODERN_FONTS)


def test_glyph_fonts_are_only_matplotlibs_dejavu_and_computer_modern_fonts():
    paths = [path for path, _ in list_glyph_fonts()]

    assert all(is_allowed_font(path) and path.is_file() for path in paths)
    assert not any("STIX" in path.name or "LastResort" in path.name for path in paths)
    assert COMPUTER_MODERN_FONTS <= {path.stem for path in paths}
    assert {"DejaVuSans", "DejaVuSansMono", "DejaVuSerif-Italic"} <= {path.stem for path in paths}


def test_drawing_glyphs_opens_no_held_out_font_and_never_pillows_default(monkeypatch):
    opened: list[Path] = []
    real_truetype = ImageFont.truetype

    def recording_truetype(font, *args, **kwargs):
        opened.append(Path(font))
        return real_truetype(font, *args, **kwargs)

    def refuse_default(*args, **kwargs):
        raise AssertionError("Pillow's default font is reserved for the held-out test set")

    monkeypatch.setattr(ImageFont, "truetype", recording_truetype)
    monkeypatch.setattr(ImageFont, "load_default", refuse_default)
    outlier_drawings._load_font.cache_clear()  # fonts cached by earlier tests would be opened unseen
    try:
        for seed in range(300):
            draw_glyph(np.random.default_rng(seed))
    finally:
        outlier_drawings._load_font.cache_clear()

    assert opened and all(is_allowed_font(path) for path in opened)


def test_no_glyph_that_reads_as_a_digit_is_ever_drawn():
    drawn = {character for _, characters in list_glyph_fonts() for character in characters}

    assert not drawn & set(DIGIT_LIKE_GLYPHS) and not drawn & set(string.digits)
    # The look-alikes a reader of digits mistakes first: O/o for 0, l/I/| for 1, Z for 2, S for 5, B for 8.
    assert set("OoQDIil|!/\\()ZzSsbBgq") <= set(DIGIT_LIKE_GLYPHS)
    assert {DIGIT_LIKE_GLYPHS[glyph] for glyph in "OlZSBq"} == {"0", "1", "2", "5", "8", "9"}


def test_enough_letters_and_symbols_remain_to_draw():
    drawn = {character for _, characters in list_glyph_fonts() for character in characters}

    assert len(drawn & set(string.ascii_letters)) >= 30
    assert set("+-=*#@%?$[]<>") <= drawn and "€" in drawn and "Σ" in drawn


def test_every_glyph_is_in_its_font_so_none_is_drawn_as_a_missing_glyph_box():
    for path, characters in list_glyph_fonts():
        mapped = TTFont(path).getBestCmap()
        assert [character for character in characters if ord(character) not in mapped] == [], path.name


def test_computer_modern_draws_no_symbol_that_its_tex_encoding_puts_elsewhere():
    characters = {path.stem: set(characters) for path, characters in list_glyph_fonts()}

    # In cmr10 "<" and ">" are the Spanish "¡" and "¿"; in cmmi10 "!" is an omega and "=" a slash.
    assert not characters["cmr10"] & set("<>\\{}|_\"'`")
    assert characters["cmmi10"] - set(string.ascii_letters) == set("<>")


@pytest.mark.parametrize("draw", DRAWERS, ids=lambda draw: draw.__name__)
def test_each_drawing_is_a_white_on_black_page_with_ink(draw):
    for seed in range(10):
        page = draw(np.random.default_rng(seed))

        assert page.shape == (PAPER_SIDE_PIXELS, PAPER_SIDE_PIXELS) and page.dtype == np.uint8
        assert page.max() >= 200 and np.count_nonzero(page >= 128) >= 10  # a thin dash has ~15
        assert np.median(page) < 50  # mostly black: ink is the minority


@pytest.mark.parametrize("draw", DRAWERS, ids=lambda draw: draw.__name__)
def test_each_drawing_is_the_same_for_a_seed_and_differs_for_another(draw):
    first = draw(np.random.default_rng(7))

    np.testing.assert_array_equal(draw(np.random.default_rng(7)), first)
    assert not np.array_equal(draw(np.random.default_rng(8)), first)
