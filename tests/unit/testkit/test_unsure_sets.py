"""The held-out "unsure" sets: reproducible PNG uploads of the sizes they claim, every one with ink, every
kind present, and two-digit numbers that are two test-split digits side by side where their boxes say."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest

from testkit import two_digit_numbers
from testkit.shared_data import SHARED_DATA_DIR, read_mnist
from testkit.two_digit_numbers import DigitPool, crop_to_ink, load_test_digit_pools
from testkit.unsure_sets import (
    CANVAS_MAX_SIDE_PIXELS,
    CANVAS_MIN_SIDE_PIXELS,
    NON_DIGIT_KINDS,
    NON_DIGIT_SET,
    TWO_DIGIT_SET,
    HeldOutImage,
    make_non_digit_images,
    make_two_digit_images,
    set_of_kind,
)

pytestmark = pytest.mark.unit

INK_CONTRAST_LEVELS = 80  # paper varies by < 50 levels (lighting, noise); ink lies > 100 levels away
MIN_INK_FRACTION = 0.003
MAX_SURELY_MINORITY_INK_FRACTION = 0.4  # a checkerboard may ink half the page
BLUR_REACH_PIXELS = 2  # a blurred stroke's edge spreads this far past the digit's box
# The digit drawn in a box, against the test digit it claims to be: 0.78 at worst (thin strokes,
# blurred), 0.97 typically.
MIN_DIGIT_CORRELATION = 0.6
MIN_MEAN_DIGIT_CORRELATION = 0.9
TEXTURE_KINDS = ("checkerboard", "wood_grain", "bricks", "crosshatch")  # swatches may fill the photo
NON_DIGIT_COUNT = 3 * len(NON_DIGIT_KINDS)
TWO_DIGIT_COUNT = 24


@pytest.fixture(scope="module")
def pools() -> list[DigitPool]:
    return load_test_digit_pools()


@pytest.fixture(scope="module")
def non_digits() -> list[HeldOutImage]:
    return make_non_digit_images(NON_DIGIT_COUNT, seed=5)


@pytest.fixture(scope="module")
def two_digit_numbers_made(pools: list[DigitPool]) -> list[HeldOutImage]:
    return make_two_digit_images(TWO_DIGIT_COUNT, seed=5, pools=pools)


def decode_gray(image: HeldOutImage) -> np.ndarray:
    decoded = cv2.imdecode(np.frombuffer(image.upload, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    assert decoded is not None, f"{image.kind}: not a decodable image"
    return decoded


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Pixels far from the paper's level (the median), whichever side the ink is on."""
    return np.abs(gray.astype(np.int16) - np.median(gray)) > INK_CONTRAST_LEVELS


def ink_level(gray: np.ndarray) -> np.ndarray:
    """Dark-on-light image -> float32 ink darkness above the paper, 0 on paper."""
    return np.clip(np.median(gray) - gray.astype(np.float32), 0.0, None)


def test_a_seed_reproduces_every_image_and_another_seed_does_not(pools) -> None:
    first, again = (
        make_non_digit_images(NON_DIGIT_COUNT, seed=5),
        make_non_digit_images(NON_DIGIT_COUNT, seed=5),
    )
    other = make_non_digit_images(NON_DIGIT_COUNT, seed=6)

    assert first == again
    assert all(a.upload != b.upload for a, b in zip(first, other, strict=True))
    first = make_two_digit_images(6, seed=5, pools=pools)
    assert first == make_two_digit_images(6, seed=5, pools=pools)
    assert all(a.upload != b.upload for a, b in zip(first, make_two_digit_images(6, 6, pools), strict=True))


def test_more_images_only_add_to_a_set() -> None:
    assert make_non_digit_images(20, seed=5)[:7] == make_non_digit_images(7, seed=5)


def test_each_upload_is_a_png_of_the_size_it_claims(non_digits, two_digit_numbers_made) -> None:
    for image in non_digits + two_digit_numbers_made:
        assert image.upload.startswith(b"\x89PNG\r\n\x1a\n")
        assert decode_gray(image).shape == (image.height_pixels, image.width_pixels)
        assert CANVAS_MIN_SIDE_PIXELS <= image.width_pixels <= CANVAS_MAX_SIDE_PIXELS
        assert CANVAS_MIN_SIDE_PIXELS <= image.height_pixels <= CANVAS_MAX_SIDE_PIXELS


def test_every_image_has_ink_on_the_side_it_claims(non_digits, two_digit_numbers_made) -> None:
    for image in non_digits + two_digit_numbers_made:
        gray = decode_gray(image)
        ink_fraction = ink_mask(gray).mean()
        assert ink_fraction >= MIN_INK_FRACTION, f"{image.kind} has (nearly) no ink"
        if ink_fraction < MAX_SURELY_MINORITY_INK_FRACTION:  # else the median may be the ink's level
            ink_values = gray[ink_mask(gray)]
            assert (np.median(ink_values) > np.median(gray)) == image.is_light_on_dark, image.kind


def test_every_kind_is_drawn_in_turn_and_some_are_light_on_dark(non_digits, two_digit_numbers_made) -> None:
    assert [image.kind for image in non_digits] == list(NON_DIGIT_KINDS) * 3
    assert {image.kind for image in two_digit_numbers_made} == {"two_digits_mnist", "two_digits_cvl"}
    assert {set_of_kind(image.kind) for image in non_digits} == {NON_DIGIT_SET}
    assert {set_of_kind(image.kind) for image in two_digit_numbers_made} == {TWO_DIGIT_SET}
    assert 0 < sum(image.is_light_on_dark for image in make_non_digit_images(200, seed=5)) < 60
    assert not any(image.is_light_on_dark for image in two_digit_numbers_made)


def test_glyphs_and_pen_drawings_keep_off_the_edges_where_the_service_sees_a_page_edge(non_digits) -> None:
    for image in non_digits:
        if image.kind not in TEXTURE_KINDS:
            ink = ink_mask(decode_gray(image))
            edges = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
            assert not edges.any(), f"{image.kind} {image.text or ''} touches the edge"


def test_only_glyph_kinds_carry_their_text(non_digits) -> None:
    for image in non_digits:
        has_text = image.kind in ("stix_letter", "stix_symbol", "pillow_glyph", "word")
        assert (image.text is not None) == has_text
        assert image.labels is None and image.digit_boxes is None


def test_the_pools_are_the_test_splits_only(monkeypatch) -> None:
    splits_read = []

    def read_mnist_recording(*args, **kwargs):
        splits_read.append(kwargs.get("split", args[1] if len(args) > 1 else "test"))
        return read_mnist(*args, **kwargs)

    monkeypatch.setattr(two_digit_numbers, "read_mnist", read_mnist_recording)
    mnist, cvl = load_test_digit_pools()

    assert splits_read == ["test"]
    assert (mnist.name, len(mnist.labels), cvl.name, len(cvl.labels)) == ("mnist", 10_000, "cvl", 7_000)
    assert all(origin.startswith("cvl/test/") for origin in cvl.origins)
    assert cvl.images.dtype == np.uint8 and cvl.images[:, 0, 0].max() == 0  # paper -> 0: white on black


@functools.cache
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    return read_mnist(split="test")


def source_digit(origin: str) -> tuple[np.ndarray, int]:
    """A digit's origin -> its (28, 28) uint8 white-on-black image and label, read afresh."""
    if origin.startswith("mnist/test/"):
        images, labels = mnist_test()
        index = int(origin.removeprefix("mnist/test/"))
        return images[index], int(labels[index])
    assert origin.startswith("cvl/test/"), origin
    path = SHARED_DATA_DIR / origin
    scan = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return np.clip(np.median(scan) - scan.astype(np.int16), 0, 255).astype(np.uint8), int(path.parent.name)


def test_a_two_digit_number_is_its_two_test_digits_side_by_side(two_digit_numbers_made) -> None:
    correlations = []
    for image in two_digit_numbers_made:
        gray = decode_gray(image)
        ink = ink_mask(gray)
        (left_a, top_a, right_a, bottom_a), (left_b, top_b, right_b, bottom_b) = image.digit_boxes
        assert 0 <= left_a < right_a <= left_b < right_b <= image.width_pixels
        assert 0 <= min(top_a, top_b) and max(bottom_a, bottom_b) <= image.height_pixels
        outside = ink.copy()
        for left, top, right, bottom in image.digit_boxes:
            reach = BLUR_REACH_PIXELS
            outside[max(top - reach, 0) : bottom + reach, max(left - reach, 0) : right + reach] = False
        assert not outside.any(), f"{image.origins}: ink outside the two digits' boxes"
        if left_b - right_a > 2 * BLUR_REACH_PIXELS:
            between = ink[:, right_a + BLUR_REACH_PIXELS : left_b - BLUR_REACH_PIXELS]
            assert not between.any(), f"{image.origins}: the two digits are not apart"
        for origin, label, (left, top, right, bottom) in zip(
            image.origins, image.labels, image.digit_boxes, strict=True
        ):
            source, source_label = source_digit(origin)
            assert label == source_label
            crop = crop_to_ink(source)
            # Back at the digit's own size, the enlargement and the blur no longer matter.
            drawn = cv2.resize(
                ink_level(gray)[top:bottom, left:right], crop.shape[::-1], interpolation=cv2.INTER_AREA
            )
            correlations.append(np.corrcoef(drawn.ravel(), crop.ravel())[0, 1])
            assert correlations[-1] > MIN_DIGIT_CORRELATION, (
                f"{origin} is not in its box ({correlations[-1]:.2f})"
            )
    # Another digit of the set correlates about 0.1 (0.85 at most: a 1 for a 1).
    assert np.mean(correlations) > MIN_MEAN_DIGIT_CORRELATION


def test_the_gap_between_the_digits_spans_touching_to_more_than_half_a_digit(pools) -> None:
    gaps, widths = [], []
    for image in make_two_digit_images(200, seed=8, pools=pools):
        (_, _, right_a, _), (left_b, _, right_b, _) = image.digit_boxes
        gaps.append(left_b - right_a)
        widths.append((right_a - image.digit_boxes[0][0] + right_b - left_b) / 2)
    relative = np.array(gaps) / np.array(widths)
    assert relative.min() < 0.05 and 0.5 < relative.max() <= 0.61
