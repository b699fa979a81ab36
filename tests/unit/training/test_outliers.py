"""Non-digit training images are canonical images that serving's preprocessing returned, reproducible
from a seed, shared out among their kinds as the mix says, cut only from the digits given, and never
one upright stroke (a 1) or one ring (a 0)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digits.errors import NoDigitFoundError
from training import outliers as outliers_module
from training.datasets import DigitSet
from training.outliers import (
    OUTLIER_MIX,
    Outliers,
    cut_fragment,
    generate_outliers,
    join_digits,
    looks_like_one_or_zero,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def digits(mnist_test_samples) -> DigitSet:
    images, labels = mnist_test_samples
    return DigitSet("mnist/test", images[:2000], labels[:2000])


def ink_box_side_pixels(image: np.ndarray) -> int:
    rows, columns = np.nonzero(image)
    return int(max(np.ptp(rows), np.ptp(columns)) + 1)


@pytest.mark.parametrize("kind", list(OUTLIER_MIX))
def test_each_kind_gives_canonical_images_with_ink(digits, kind):
    outliers = generate_outliers(digits, 6, seed=1, mix={kind: 1.0})

    assert outliers.images.shape == (6, 28, 28) and outliers.images.dtype == np.uint8
    assert list(outliers.kinds) == [kind] * 6
    for image in outliers.images:
        assert image.max() >= 200 and np.count_nonzero(image >= 128) >= 10
        assert ink_box_side_pixels(image) == 20  # framed like every digit: its longer side 20 pixels


def test_every_outlier_is_what_servings_preprocessing_returned(digits, monkeypatch):
    returned = []
    real_preprocess = outliers_module.preprocess_image

    def recording_preprocess(gray):
        assert gray.ndim == 2 and gray.dtype == np.uint8
        assert np.median(gray) > 200  # dark ink on light paper, as an upload usually is
        result = real_preprocess(gray)
        returned.append(result.canonical)
        return result

    monkeypatch.setattr(outliers_module, "preprocess_image", recording_preprocess)
    outliers = generate_outliers(digits, 20, seed=3)

    assert all(any(np.array_equal(image, seen) for seen in returned) for image in outliers.images)


def test_a_drawing_serving_refuses_is_drawn_again(digits, monkeypatch):
    calls = []
    real_preprocess = outliers_module.preprocess_image

    def refusing_every_other(gray):
        calls.append(gray)
        if len(calls) % 2:
            raise NoDigitFoundError("no digit found: the image holds only specks")
        return real_preprocess(gray)

    monkeypatch.setattr(outliers_module, "preprocess_image", refusing_every_other)
    outliers = generate_outliers(digits, 5, seed=3, mix={"glyphs": 1.0})

    assert len(outliers.images) == 5 and len(calls) >= 10


def test_a_kind_that_never_gives_a_usable_image_fails_loudly(digits, monkeypatch):
    def refusing(gray):
        raise NoDigitFoundError("no digit found: the image is (nearly) uniform")

    monkeypatch.setattr(outliers_module, "preprocess_image", refusing)
    with pytest.raises(RuntimeError, match="blots"):
        generate_outliers(digits, 1, seed=3, mix={"blots": 1.0})


def test_the_same_seed_gives_the_same_images_and_another_seed_others(digits):
    first = generate_outliers(digits, 24, seed=5)

    again = generate_outliers(digits, 24, seed=5)
    other = generate_outliers(digits, 24, seed=6)

    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.kinds, first.kinds)
    different = [not np.array_equal(a, b) for a, b in zip(first.images, other.images, strict=True)]
    assert sum(different) >= 20


def test_an_image_does_not_depend_on_how_many_are_drawn(digits):
    few = generate_outliers(digits, 3, seed=5, mix={"scribbles": 1.0})
    more = generate_outliers(digits, 6, seed=5, mix={"scribbles": 1.0})

    np.testing.assert_array_equal(more.images[:3], few.images)


def test_the_default_mix_shares_out_the_count_exactly(digits):
    outliers = generate_outliers(digits, 20, seed=2)

    assert outliers.describe() == {
        "images": 20,
        "kinds": {"glyphs": 7, "digit_runs": 5, "scribbles": 3, "textures": 2, "blots": 2, "fragments": 1},
    }


def test_a_mix_is_rounded_to_the_count_and_a_kind_left_out_gets_none(digits):
    outliers = generate_outliers(digits, 7, seed=2, mix={"glyphs": 1.0, "textures": 1.0, "blots": 1.0})

    assert outliers.describe()["kinds"] == {"glyphs": 3, "textures": 2, "blots": 2}


@pytest.mark.parametrize("mix", [{"letters": 1.0}, {"glyphs": 0.0}, {"glyphs": -1.0, "blots": 2.0}, {}])
def test_an_unknown_kind_or_a_mix_without_positive_shares_is_refused(digits, mix):
    with pytest.raises(ValueError, match="outlier mix"):
        generate_outliers(digits, 5, seed=0, mix=mix)


def test_no_outliers_are_drawn_when_none_are_asked_for(digits):
    outliers = generate_outliers(digits, 0, seed=0)

    assert outliers.images.shape == (0, 28, 28) and outliers.describe() == {"images": 0, "kinds": {}}


def labelled_noise_digits(count: int) -> DigitSet:
    """Digits whose ink is random grey levels in a disk: any piece of one is found in it alone."""
    random = np.random.default_rng(0)
    disk = np.zeros((28, 28), dtype=np.uint8)
    cv2.circle(disk, (14, 14), 9, 1, -1)
    images = (random.integers(1, 256, (count, 28, 28)) * disk).astype(np.uint8)
    return DigitSet("noise", images, np.arange(count) % 10)


def test_a_fragment_is_a_third_to_a_half_of_one_given_digit_never_of_a_1():
    given = labelled_noise_digits(30)

    for seed in range(40):
        fragment = cut_fragment(np.random.default_rng(seed), given)

        ink = fragment > 0
        sources = [
            index for index, image in enumerate(given.images) if np.array_equal(image[ink], fragment[ink])
        ]
        assert len(sources) == 1
        source = given.images[sources[0]]
        share = fragment.sum(dtype=np.int64) / source.sum(dtype=np.int64)
        assert 1 / 3 <= share <= 0.52 and given.labels[sources[0]] != 1


def test_a_run_places_two_or_three_given_digits_side_by_side():
    # Digit i is a bar 20 rows tall, 6 columns wide, of grey level 10 * (i + 1): its level tells it apart.
    images = np.zeros((20, 28, 28), dtype=np.uint8)
    for index in range(20):
        images[index, 4:24, 11:17] = 10 * (index + 1)
    given = DigitSet("bars", images, np.arange(20) % 10)

    for seed in range(40):
        run = join_digits(np.random.default_rng(seed), given)

        assert run.ndim == 2 and run.shape[0] == 32 and run.dtype == np.uint8
        assert set(np.unique(run)) - {0} <= {10 * (index + 1) for index in range(20)}
        ink_columns = np.flatnonzero(run.any(axis=0))
        assert ink_columns[-1] - ink_columns[0] + 1 >= 2 * 6 - 3  # at least two bars, overlapping by <= 3


def canonical_bar(angle_degrees: float) -> np.ndarray:
    image = np.zeros((28, 28), dtype=np.uint8)
    dx, dy = 10 * np.sin(np.radians(angle_degrees)), 10 * np.cos(np.radians(angle_degrees))
    cv2.line(image, (round(14 - dx), round(14 + dy)), (round(14 + dx), round(14 - dy)), 255, 3)
    return image


def test_one_upright_stroke_or_one_ring_looks_like_a_one_or_a_zero():
    ring = cv2.ellipse(np.zeros((28, 28), dtype=np.uint8), (14, 14), (7, 10), 0, 0, 360, 255, 3)
    grid = np.zeros((28, 28), dtype=np.uint8)
    grid[4:24:5, 4:24] = grid[4:24, 4:24:5] = 255

    assert looks_like_one_or_zero(canonical_bar(0)) and looks_like_one_or_zero(canonical_bar(25))
    assert looks_like_one_or_zero(ring)
    assert not looks_like_one_or_zero(canonical_bar(90))  # a dash lies flat: no digit
    assert not looks_like_one_or_zero(grid)


def test_most_real_ones_and_zeros_look_like_one_and_zero_and_other_digits_seldom(digits):
    def share_flagged(digit: int) -> float:
        return float(
            np.mean([looks_like_one_or_zero(image) for image in digits.images[digits.labels == digit]])
        )

    assert share_flagged(1) >= 0.9 and share_flagged(0) >= 0.6
    assert max(share_flagged(digit) for digit in (3, 4, 5, 7)) <= 0.1


def test_samples_show_the_first_images_of_each_kind_with_their_kind():
    kinds = np.array(["glyphs"] * 3 + ["textures"] * 2)
    outliers = Outliers(np.arange(5, dtype=np.uint8)[:, None, None] * np.ones((5, 28, 28), np.uint8), kinds)

    images, captions = outliers.pick_samples(per_kind=2)

    assert [int(image[0, 0]) for image in images] == [0, 1, 3, 4]
    assert captions == ["glyphs", "glyphs", "textures", "textures"]
