"""Written numbers made of real digits: the text spells the digits drawn, in the order of their boxes; each
box is its digit's ink in the image; separated digits keep apart, a touching number has exactly one
pair whose inks form one blob; a seed reproduces the image; a CVL number is one writer's; train and
test pools hold different digits; a set of numbers takes its pools and renderings in turn."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from testkit.two_digit_numbers import DIGIT_BOX_PIXELS, INK_THRESHOLD, DigitPool
from testkit.written_numbers import (
    CENTER_JITTER,
    MAX_SIDE_PIXELS,
    MAX_SLANT_DEGREES,
    SEPARATED_GAP_RANGE,
    SOURCE_NAMES,
    TOUCH_THRESHOLD,
    WrittenNumber,
    lay_out_number,
    load_digit_pool,
    pick_digits,
    write_number,
    write_numbers,
)

pytestmark = pytest.mark.unit

POOL_LIMIT = 400  # CVL: the first 3-4 writers, whole
DIGIT_COUNTS = (2, 3, 5, 7, 10)
INK_CONTRAST_LEVELS = 80  # paper lies above 150 whatever the light; ink below 130
BLUR_REACH_PIXELS = 3  # a blurred stroke's edge spreads this far past its digit's box


@pytest.fixture(scope="module")
def pools() -> dict[str, DigitPool]:
    return {source: load_digit_pool(source, "test", limit=POOL_LIMIT) for source in SOURCE_NAMES}


def numbers_of(pools: dict[str, DigitPool], is_touching: bool, seed: int) -> list[WrittenNumber]:
    """Every source, every digit count of DIGIT_COUNTS, as a scan and as a photo."""
    return [
        write_number(pools[source], count, np.random.default_rng([seed, index]), is_touching, rendering)
        for index, (source, count, rendering) in enumerate(
            (source, count, rendering)
            for source in SOURCE_NAMES
            for count in DIGIT_COUNTS
            for rendering in ("scan", "photo")
        )
    ]


@pytest.fixture(scope="module")
def separated(pools) -> list[WrittenNumber]:
    return numbers_of(pools, is_touching=False, seed=11)


@pytest.fixture(scope="module")
def touching(pools) -> list[WrittenNumber]:
    return numbers_of(pools, is_touching=True, seed=12)


def label_of(pool: DigitPool, origin: str) -> int:
    return int(pool.labels[pool.origins.index(origin)])


def components_joining(number: WrittenNumber, left: int, right: int, threshold: float) -> bool:
    """Whether some 8-connected blob of ink (coverage >= threshold) holds ink of both digits."""
    ink = number.layout.coverage >= threshold
    _, components = cv2.connectedComponents(ink.astype(np.uint8), connectivity=8)
    labels = number.layout.ink_labels
    shared = np.intersect1d(components[(labels == left) & ink], components[(labels == right) & ink])
    return shared.size > 0


def test_the_text_has_the_requested_length_and_spells_the_chosen_digits(pools, separated, touching) -> None:
    for number in separated + touching:
        pool = pools[number.source]
        assert len(number.text) == len(number.boxes) == len(number.origins)
        assert number.text == "".join(str(label_of(pool, origin)) for origin in number.origins)
    assert sorted({len(number.text) for number in separated}) == list(DIGIT_COUNTS)


def test_boxes_lie_inside_the_image_in_reading_order(separated, touching) -> None:
    for number in separated + touching:
        height, width = number.image.shape[:2]
        assert max(height, width) <= MAX_SIDE_PIXELS
        for x, y, box_width, box_height in number.boxes:
            assert x >= 0 and y >= 0 and box_width >= 1 and box_height >= 1
            assert x + box_width <= width and y + box_height <= height
        lefts = [box[0] for box in number.boxes]
        rights = [box[0] + box[2] for box in number.boxes]
        assert lefts == sorted(set(lefts)) and rights == sorted(set(rights))


def test_each_box_is_the_tight_box_of_its_digits_ink(separated) -> None:
    for number in separated:
        for index, box in enumerate(number.boxes):
            rows, columns = np.nonzero(number.layout.ink_labels == index)
            ink_box = (
                columns.min(),
                rows.min(),
                columns.max() - columns.min() + 1,
                rows.max() - rows.min() + 1,
            )
            assert ink_box == box


def test_the_image_shows_dark_ink_only_in_the_boxes(separated, touching) -> None:
    for number in separated + touching:
        gray = number.image if number.rendering == "scan" else cv2.cvtColor(number.image, cv2.COLOR_BGR2GRAY)
        assert gray.dtype == np.uint8 and gray.ndim == 2
        assert number.image.ndim == (2 if number.rendering == "scan" else 3)
        dark = gray.astype(np.int16) < np.median(gray) - INK_CONTRAST_LEVELS
        in_boxes = np.zeros_like(dark)
        for x, y, box_width, box_height in number.boxes:
            in_boxes[
                max(0, y - BLUR_REACH_PIXELS) : y + box_height + BLUR_REACH_PIXELS,
                max(0, x - BLUR_REACH_PIXELS) : x + box_width + BLUR_REACH_PIXELS,
            ] = True
        assert dark.any()
        assert not (dark & ~in_boxes).any()


def test_separated_digits_keep_apart_by_a_share_of_the_digit_width(separated) -> None:
    gap_shares = []
    for number in separated:
        assert number.layout.touching_pair is None and not number.is_touching
        mean_width = np.mean([box[2] for box in number.boxes])
        for index, (left, right) in enumerate(zip(number.boxes, number.boxes[1:], strict=False)):
            gap = right[0] - (left[0] + left[2])
            assert 1 <= gap <= SEPARATED_GAP_RANGE[1] * mean_width + 1
            assert not components_joining(number, index, index + 1, INK_THRESHOLD)
            gap_shares.append(gap / mean_width)
    # Drawn uniformly in 0.15-0.8 of the digits' own width, measured here against the slanted boxes.
    assert min(gap_shares) >= 0.1
    assert 0.35 <= np.mean(gap_shares) <= 0.6


def test_a_touching_number_has_exactly_one_adjacent_pair_that_touches_as_one_blob(touching) -> None:
    for number in touching:
        pair = number.layout.touching_pair
        assert number.is_touching
        touching_pairs = [
            index
            for index, (left, right) in enumerate(zip(number.boxes, number.boxes[1:], strict=False))
            if right[0] <= left[0] + left[2]
        ]
        assert touching_pairs == [pair]
        assert components_joining(number, pair, pair + 1, INK_THRESHOLD)
        assert components_joining(number, pair, pair + 1, TOUCH_THRESHOLD)


def test_digits_are_level_and_slanted_within_their_ranges(separated, touching) -> None:
    for number in separated + touching:
        scale = number.layout.scale
        assert 2.0 <= scale <= 4.0
        assert abs(number.layout.slant_degrees) <= MAX_SLANT_DEGREES
        middles = [box[1] + box[3] / 2 for box in number.boxes]
        assert max(middles) - min(middles) <= 2 * CENTER_JITTER * DIGIT_BOX_PIXELS * scale + 1.5
        assert max(box[3] for box in number.boxes) <= 1.1 * DIGIT_BOX_PIXELS * scale + 1


def test_a_long_number_is_written_smaller_to_fit_the_largest_side(pools) -> None:
    pool, rng = pools["mnist"], np.random.default_rng(3)
    digits = [pool.images[index] for index in pick_digits(pool, 10, rng)]

    layout = lay_out_number(digits, rng, is_touching=False, max_side_pixels=300)

    assert max(layout.coverage.shape) <= 300
    assert layout.scale < 2.0


def test_a_seed_reproduces_the_image_exactly_and_another_seed_does_not(pools) -> None:
    def make(seed: int) -> WrittenNumber:
        return write_number(pools["cvl"], 5, np.random.default_rng(seed), is_touching=True, rendering="photo")

    first, again, other = make(7), make(7), make(8)

    assert np.array_equal(first.image, again.image)
    assert (first.text, first.boxes, first.origins) == (again.text, again.boxes, again.origins)
    assert first.image.shape != other.image.shape or not np.array_equal(first.image, other.image)


def test_the_digits_of_a_cvl_number_share_one_writer(pools, separated, touching) -> None:
    pool = pools["cvl"]
    assert len(set(pool.writers)) > 1
    for number in separated + touching:
        if number.source == "cvl":
            writers = {pool.writers[pool.origins.index(origin)] for origin in number.origins}
            assert len(writers) == 1


def test_train_and_test_pools_hold_different_digits(pools) -> None:
    for source in SOURCE_NAMES:
        train = load_digit_pool(source, "train", limit=POOL_LIMIT)
        test = pools[source]

        assert all(f"{source}/train/" in origin for origin in train.origins)
        assert all(f"{source}/test/" in origin for origin in test.origins)
        assert not {image.tobytes() for image in train.images} & {image.tobytes() for image in test.images}
        if source == "cvl":
            assert not set(train.writers) & set(test.writers)


@pytest.mark.parametrize(
    ("source", "split"), [("emnist", "test"), ("mnist", "validation")], ids=["source", "split"]
)
def test_an_unknown_source_or_split_is_refused(source: str, split: str) -> None:
    with pytest.raises(ValueError, match="unknown source"):
        load_digit_pool(source, split)


def test_a_set_of_numbers_takes_the_pools_and_renderings_in_turn_separated_first(pools) -> None:
    given = [pools["mnist"], pools["cvl"]]

    numbers = write_numbers(given, numbers_per_group=4, seed=3, digit_counts=(3, 5))

    assert [number.is_touching for number in numbers] == [False] * 4 + [True] * 4
    assert [number.source for number in numbers] == [given[0].name, given[1].name] * 4
    assert [number.rendering for number in numbers] == ["scan", "scan", "photo", "photo"] * 2
    assert all(3 <= len(number.text) <= 4 for number in numbers)
    again = write_numbers(given, numbers_per_group=4, seed=3, digit_counts=(3, 5))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(numbers, again, strict=True))


def test_a_touching_number_needs_two_digits(pools) -> None:
    with pytest.raises(ValueError):
        write_number(pools["mnist"], 1, np.random.default_rng(0), is_touching=True)
