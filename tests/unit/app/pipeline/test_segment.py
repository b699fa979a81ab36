"""`segment_number`: a photo or scan of a number -> its ink groups, each with the ways to read it.

Fixtures are numbers drawn with a pen of OpenCV strokes on white paper, so that every box is known:
digits apart, touching, broken, a 5 with a detached flag, ruled lines, a form box, specks.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.pipeline.segment import SegmentedNumber, segment_number
from digits.errors import NoDigitFoundError, TooManyDigitsError

pytestmark = pytest.mark.unit

HEIGHT = 80  # a drawn digit's height in pixels
PEN = 7
PAPER, INK = 255, 20


def page(width: int, height: int = 200) -> np.ndarray:
    return np.full((height, width), PAPER, dtype=np.uint8)


def draw_one(image: np.ndarray, left: int, top: int = 60) -> tuple[int, int, int, int]:
    cv2.line(image, (left + 20, top), (left + 20, top + HEIGHT), INK, PEN)
    return left + 20 - PEN // 2, top - PEN // 2, PEN, HEIGHT + PEN


def draw_zero(image: np.ndarray, left: int, top: int = 60, width: int = 50) -> tuple[int, int, int, int]:
    center = (left + width // 2, top + HEIGHT // 2)
    cv2.ellipse(image, center, (width // 2, HEIGHT // 2), 0, 0, 360, INK, PEN)
    return left - PEN // 2, top - PEN // 2, width + PEN, HEIGHT + PEN


def draw_seven(image: np.ndarray, left: int, top: int = 60, with_bar: bool = True) -> None:
    if with_bar:
        cv2.line(image, (left, top), (left + 50, top), INK, PEN)
    cv2.line(image, (left + 50, top + (0 if with_bar else 14)), (left + 15, top + HEIGHT), INK, PEN)


def draw_five(image: np.ndarray, left: int, top: int = 60, flag_gap: int = 0) -> None:
    """A 5: its flag (the top bar) drawn `flag_gap` pixels above the body when detached."""
    cv2.line(image, (left + 8, top), (left + 48, top - flag_gap and top), INK, PEN)
    body_top = top + flag_gap
    cv2.line(image, (left + 8, body_top + (PEN if flag_gap else 0)), (left + 6, body_top + 36), INK, PEN)
    cv2.ellipse(image, (left + 22, top + 56), (24, 22), 0, -150, 150, INK, PEN)


def readings_lengths(number: SegmentedNumber) -> list[list[int]]:
    return [[len(reading.pieces) for reading in group] for group in number.groups]


def whole_boxes(number: SegmentedNumber) -> list[tuple[int, int, int, int]]:
    """Each group's box when every part is its own digit (the reading without merges or cuts)."""
    boxes = []
    for group in number.groups:
        plain = next(r for r in group if r.cuts == 0 and r.merges == 0)
        boxes += [number.candidates[piece].box for piece in plain.pieces]
    return boxes


def assert_box_close(found, drawn, tolerance=4):
    assert np.all(np.abs(np.array(found) - np.array(drawn)) <= tolerance), (found, drawn)


def test_digits_apart_are_groups_left_to_right_with_their_boxes():
    image = page(400)
    drawn = [draw_zero(image, 40), draw_one(image, 130), draw_zero(image, 200), draw_one(image, 290)]
    number = segment_number(image, max_digits=20)
    assert len(number.groups) == 4
    for found, box in zip(whole_boxes(number), drawn, strict=True):
        assert_box_close(found, box)
    assert number.is_inverted
    assert all(candidate.canonical.shape == (28, 28) for candidate in number.candidates)


def test_light_ink_on_dark_background_reads_the_same():
    image = page(400)
    draw_zero(image, 40)
    draw_zero(image, 200)
    number = segment_number(255 - image, max_digits=20)
    assert len(number.groups) == 2 and not number.is_inverted


def test_touching_digits_get_readings_cut_between_them():
    image = page(300)
    draw_zero(image, 60)
    draw_zero(image, 60 + 50 + PEN - 2)  # the two rings share their touching columns
    number = segment_number(image, max_digits=20)
    (group,) = number.groups
    cut_in_two = [reading for reading in group if reading.cuts == 1]
    assert cut_in_two, readings_lengths(number)
    # The best-placed cut gives each ring its own box, whatever cut the model prefers later.
    boxes = [[number.candidates[piece].box for piece in reading.pieces] for reading in cut_in_two]
    seam = 60 + 50 + PEN // 2
    assert any(abs(left[0] + left[2] - seam) <= 8 and abs(right[0] - seam) <= 8 for left, right in boxes), (
        boxes
    )
    assert any(reading.cuts == 0 and len(reading.pieces) == 1 for reading in group)


def test_a_narrow_one_touching_a_wide_digit_gets_a_reading_cut_where_they_meet():
    """A pair of unequal widths meets off-centre, where neither the even cut nor the emptiest column
    near the middle falls; and the part is hardly wider than one digit."""
    image = page(300)
    draw_zero(image, 60)  # ink from x 56 to 113
    one_left = 102  # a handwritten 1, its foot touching the 0's right side
    cv2.line(image, (one_left + 26, 60), (one_left + 12, 60 + HEIGHT), INK, PEN)
    cv2.line(image, (one_left + 16, 72), (one_left + 26, 60), INK, PEN)
    number = segment_number(image, max_digits=20)
    (group,) = number.groups
    boxes = [
        [number.candidates[piece].box for piece in reading.pieces] for reading in group if reading.cuts == 1
    ]
    seam = 113
    assert any(abs(left[0] + left[2] - seam) <= 8 and abs(right[0] - seam) <= 8 for left, right in boxes), (
        boxes
    )


def test_a_detached_flag_joins_its_five():
    image = page(300)
    draw_five(image, 60, flag_gap=10)
    draw_one(image, 160)
    number = segment_number(image, max_digits=20)
    assert readings_lengths(number)[0][0] == 1
    five_box = whole_boxes(number)[0]
    assert five_box[1] <= 60 and five_box[0] + five_box[2] >= 60 + 48  # the box holds the flag


def test_a_seven_whose_bar_is_apart_is_one_digit():
    image = page(300)
    draw_seven(image, 60, with_bar=False)
    cv2.line(image, (60, 60), (100, 60), INK, PEN)  # the bar, lifted off before the stroke down
    draw_one(image, 160)
    number = segment_number(image, max_digits=20)
    assert len(whole_boxes(number)) == 2


def test_a_digit_broken_into_two_full_height_parts_can_be_read_whole():
    image = page(300)
    cv2.ellipse(image, (100, 100), (25, 40), 0, 115, 245, INK, PEN)  # "(" of a 0 whose pen skipped
    cv2.ellipse(image, (100, 100), (25, 40), 0, -65, 65, INK, PEN)  # ")"
    number = segment_number(image, max_digits=20)
    (group,) = number.groups
    merged = [reading for reading in group if reading.merges == 1]
    assert len(merged) == 1 and len(merged[0].pieces) == 1
    assert any(len(reading.pieces) == 2 and reading.merges == 0 for reading in group)


def test_ruled_lines_and_underlines_are_not_digits():
    image = page(500)
    drawn = [draw_zero(image, 60), draw_one(image, 150), draw_zero(image, 230)]
    cv2.line(image, (10, 145), (490, 145), INK, 3)  # the line written on, touching the digits
    cv2.line(image, (10, 175), (490, 175), INK, 3)  # a ruled line below
    number = segment_number(image, max_digits=20)
    assert len(number.groups) == 3
    for found, box in zip(whole_boxes(number), drawn, strict=True):
        assert_box_close(found, box, tolerance=6)


def test_a_form_box_around_the_number_is_not_a_digit():
    image = page(500, height=260)
    drawn = [draw_zero(image, 120, top=90), draw_one(image, 210, top=90), draw_zero(image, 290, top=90)]
    cv2.rectangle(image, (60, 40), (420, 220), INK, 3)
    number = segment_number(image, max_digits=20)
    assert len(number.groups) == 3
    for found, box in zip(whole_boxes(number), drawn, strict=True):
        assert_box_close(found, box, tolerance=6)


def test_specks_and_marks_off_the_row_are_ignored():
    image = page(400)
    draw_zero(image, 60)
    draw_one(image, 150)
    for x, y in [(30, 20), (250, 180), (300, 100), (350, 40)]:
        cv2.circle(image, (x, y), 2, INK, -1)
    number = segment_number(image, max_digits=20)
    assert len(number.groups) == 2


def test_boxes_are_in_the_uploaded_image_pixels_when_a_large_photo_is_shrunk():
    small = page(400)
    drawn = [draw_zero(small, 40), draw_one(small, 200)]
    large = cv2.resize(small, None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)  # 1600 wide: shrunk
    number = segment_number(large, max_digits=20)
    for found, box in zip(whole_boxes(number), drawn, strict=True):
        assert_box_close(found, tuple(4 * value for value in box), tolerance=16)


def test_more_digits_than_allowed_are_refused():
    image = page(700)
    for index in range(6):
        draw_one(image, 30 + 100 * index)
    with pytest.raises(TooManyDigitsError, match="at most 5"):
        segment_number(image, max_digits=5)
    assert len(segment_number(image, max_digits=6).groups) == 6


@pytest.mark.parametrize("image", [page(300), np.full((50, 50), 128, np.uint8)], ids=["blank", "grey"])
def test_an_image_without_ink_is_no_digit(image):
    with pytest.raises(NoDigitFoundError):
        segment_number(image, max_digits=20)


def test_only_specks_is_no_digit():
    image = page(300)
    cv2.circle(image, (100, 100), 2, INK, -1)
    cv2.circle(image, (200, 60), 1, INK, -1)
    with pytest.raises(NoDigitFoundError):
        segment_number(image, max_digits=20)


def draw_wave(image: np.ndarray, left: int, right: int, middle: int) -> None:
    """A wavy underline: a zigzag 12 pixels high, far wider than tall."""
    points = np.array([(x, middle + (6 if (x // 15) % 2 else -6)) for x in range(left, right, 15)], np.int32)
    cv2.polylines(image, [points], False, INK, 4)


def test_a_wavy_line_alone_is_no_digit():
    image = page(500)
    draw_wave(image, 40, 460, 100)
    with pytest.raises(NoDigitFoundError):
        segment_number(image, max_digits=20)


def test_a_wavy_line_under_a_number_is_no_part_of_its_digits():
    image = page(500, height=260)
    drawn = [draw_zero(image, 60), draw_one(image, 150), draw_zero(image, 230)]
    draw_wave(image, 40, 460, 60 + HEIGHT + 45)  # under the row, further than a piece's reach
    number = segment_number(image, max_digits=20)
    assert len(number.groups) == 3
    for found, box in zip(whole_boxes(number), drawn, strict=True):
        assert_box_close(found, box)


def test_boxes_stay_inside_a_shrunk_upload_whose_digits_touch_its_edge():
    small = page(400, height=120)
    draw_zero(small, 40, top=30)
    cv2.line(small, (220, 30), (220, 119), INK, PEN)  # a 1 running off the bottom edge
    large = cv2.resize(small, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
    large = np.ascontiguousarray(large[:, :1201])  # an odd width: the shrink does not divide evenly
    number = segment_number(large, max_digits=20)
    height, width = large.shape
    for x, y, box_width, box_height in (candidate.box for candidate in number.candidates):
        assert 0 <= x and 0 <= y and x + box_width <= width and y + box_height <= height
