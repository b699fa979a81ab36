"""split_train_validation keeps every (source, label) group at the same ratio, reproducibly, and never
puts a writer on both sides."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.datasets.combine import held_out_test_sets, split_train_validation
from training.datasets.digit_set import DatasetError, DigitSet, DigitSource

pytestmark = pytest.mark.unit


def _source(name: str, per_label: int, first_value: int, with_test: bool = True) -> DigitSource:
    """A source whose every image is unique and traceable: image i has pixel (0, 0..2) = source, i's bytes."""
    count = per_label * 10
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = first_value
    images[:, 0, 1] = np.arange(count) // 256
    images[:, 0, 2] = np.arange(count) % 256
    labels = np.arange(count, dtype=np.int64) % 10
    train = DigitSet(f"{name}/train", images, labels)
    test = DigitSet(f"{name}/test", images[:10], labels[:10]) if with_test else None
    return DigitSource(name, train, test)


def _keys(digits: DigitSet) -> list[tuple[int, int, int]]:
    return [tuple(int(value) for value in image[0, :3]) for image in digits.images]


@pytest.fixture
def sources() -> list[DigitSource]:
    return [_source("big", per_label=100, first_value=1), _source("small", per_label=20, first_value=2)]


def test_split_is_ninety_ten_within_every_source_and_label(sources):
    split = split_train_validation(sources, validation_fraction=0.1, seed=7)

    assert (split.train.name, split.validation.name) == ("combined/train", "combined/validation")
    for source_value, per_label in ((1, 100), (2, 20)):
        for label in range(10):
            in_validation = np.sum(
                (split.validation.images[:, 0, 0] == source_value) & (split.validation.labels == label)
            )
            in_train = np.sum((split.train.images[:, 0, 0] == source_value) & (split.train.labels == label))
            assert (in_train, in_validation) == (per_label * 9 // 10, per_label // 10)


def test_split_is_disjoint_and_loses_no_sample(sources):
    split = split_train_validation(sources)
    train_keys, validation_keys = set(_keys(split.train)), set(_keys(split.validation))
    assert not train_keys & validation_keys
    all_keys = {key for source in sources for key in _keys(source.train)}
    assert train_keys | validation_keys == all_keys
    assert len(split.train) + len(split.validation) == len(all_keys) == 1200


def test_split_keeps_each_image_with_its_label(sources):
    split = split_train_validation(sources)
    for digits in (split.train, split.validation):
        np.testing.assert_array_equal(
            (digits.images[:, 0, 1].astype(int) * 256 + digits.images[:, 0, 2]) % 10, digits.labels
        )


def test_split_is_deterministic_for_a_seed_and_differs_across_seeds(sources):
    first, again = split_train_validation(sources, seed=3), split_train_validation(sources, seed=3)
    other = split_train_validation(sources, seed=4)
    np.testing.assert_array_equal(first.train.images, again.train.images)
    np.testing.assert_array_equal(first.validation.labels, again.validation.labels)
    assert _keys(first.validation) != _keys(other.validation)


def test_split_shuffles_labels_and_sources_together(sources):
    split = split_train_validation(sources)
    assert len(set(split.train.labels[:50].tolist())) == 10
    assert set(split.train.images[:100, 0, 0].tolist()) == {1, 2}


def test_split_skips_sources_without_train_split(sources):
    test_only = DigitSource("test-only", None, sources[0].test)
    split = split_train_validation([test_only, *sources])
    assert len(split.train) + len(split.validation) == 1200


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_validation_fraction_outside_open_unit_interval(sources, fraction):
    with pytest.raises(ValueError, match="validation_fraction must be strictly between 0 and 1"):
        split_train_validation(sources, validation_fraction=fraction)


def test_split_without_any_training_data_names_the_sources():
    with pytest.raises(DatasetError, match=r"no training data: .*\(only-test\)"):
        split_train_validation([DigitSource("only-test", None, None)])


def test_held_out_test_sets_keeps_each_source_separate(sources):
    test_sets = held_out_test_sets([*sources, _source("no-test", 1, 3, with_test=False)])
    assert [digits.name for digits in test_sets] == ["big/test", "small/test"]


def _with_writers(source: DigitSource, writers: np.ndarray) -> DigitSource:
    train = DigitSet(source.train.name, source.train.images, source.train.labels, writers)
    return DigitSource(source.name, train, source.test)


@settings(max_examples=60, deadline=None)
@given(
    writer_ids=st.lists(st.integers(0, 30), min_size=20, max_size=200),
    fraction=st.floats(0.05, 0.5),
    seed=st.integers(0, 2**16),
)
def test_no_writer_is_on_both_sides_of_the_split(writer_ids, fraction, seed):
    count = len(writer_ids)
    writers = np.array([f"w{writer}" for writer in writer_ids])
    if len(set(writer_ids)) < 2:
        writers[0] = "another"  # a writer-disjoint split needs two writers
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(count) // 256, np.arange(count) % 256
    source = DigitSource("cvl", DigitSet("cvl/train", images, np.arange(count) % 10, writers), None)

    split = split_train_validation([source], validation_fraction=fraction, seed=seed)

    assert set(split.train.writers) & set(split.validation.writers) == set()
    assert len(split.train) + len(split.validation) == count and len(split.validation) > 0
    # Each image keeps its writer: image i was written by writers[i].
    for digits in (split.train, split.validation):
        indices = digits.images[:, 0, 0].astype(int) * 256 + digits.images[:, 0, 1]
        assert digits.writers.tolist() == [f"cvl/train:{writers[i]}" for i in indices]


def test_writers_go_to_validation_whole_at_about_the_fraction_beside_a_source_without_writers(sources):
    fifty_writers = np.repeat(np.arange(50), 20).astype(str)  # 20 digits each
    cvl = _with_writers(_source("cvl", per_label=100, first_value=3), fifty_writers)
    split = split_train_validation([sources[0], cvl], validation_fraction=0.1, seed=3)

    cvl_validation = split.validation.images[:, 0, 0] == 3
    assert cvl_validation.sum() == 100  # 5 of the 50 writers, 20 digits each
    assert split.validation.writers is None  # the other source has none to keep
    big_validation = np.bincount(split.validation.labels[split.validation.images[:, 0, 0] == 1], minlength=10)
    assert big_validation.tolist() == [10] * 10  # still stratified by label


def test_a_writer_disjoint_split_of_one_writer_is_refused(sources):
    lonely = _with_writers(sources[1], np.full(200, "0169"))
    with pytest.raises(DatasetError, match="at least 2 writers, got 1"):
        split_train_validation([lonely], validation_fraction=0.1)


def test_one_prolific_writer_never_takes_validation_far_past_the_fraction():
    # 95 digits of one writer, 5 of another: neither lands near 10 %, the smaller is the nearer.
    writers = np.array(["prolific"] * 95 + ["brief"] * 5)
    images = np.zeros((100, 28, 28), dtype=np.uint8)
    source = DigitSource("cvl", DigitSet("cvl/train", images, np.arange(100) % 10, writers), None)
    for seed in range(10):
        split = split_train_validation([source], validation_fraction=0.1, seed=seed)
        assert len(split.validation) == 5


def test_a_repeated_source_comes_that_many_times_into_train_and_validation_stays_the_same(sources):
    once = split_train_validation(sources, seed=5)
    repeated = split_train_validation(sources, seed=5, repeats={"small": 3})

    assert sorted(_keys(repeated.validation)) == sorted(_keys(once.validation))
    small_once = [key for key in _keys(once.train) if key[0] == 2]
    small_repeated = [key for key in _keys(repeated.train) if key[0] == 2]
    assert sorted(small_repeated) == sorted(small_once * 3)
    assert sum(key[0] == 1 for key in _keys(repeated.train)) == 900  # "big" once
