"""Flags become a validated TrainConfig whose defaults are the issue's recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import TrainConfig, parse_args

pytestmark = pytest.mark.unit


def test_defaults_follow_the_specified_hyperparameters():
    config = parse_args([])
    assert config.batch_size == 384 and config.learning_rate == 1e-3 and config.seed == 42
    assert config.datasets == ("mnist", "usps") and config.output_dir == Path("models/digits")


def test_quick_means_one_epoch_and_at_most_one_static_copy():
    config = parse_args(["--quick", "--epochs", "30", "--static-copies", "3"])
    assert config.epochs == 1 and config.static_augment.copies_per_image == 1 and config.quick


def test_each_augmentation_has_a_flag_to_turn_it_off():
    config = parse_args(["--no-elastic", "--no-inversion", "--no-zoom"])
    assert not config.static_augment.enable_elastic and not config.static_augment.enable_inversion
    assert not config.realtime_augment.enable_zoom and config.realtime_augment.enable_rotation


def test_augment_seed_defaults_to_the_split_seed_and_can_differ():
    assert parse_args(["--seed", "5"]).effective_augment_seed == 5
    fine_tuning = parse_args(["--seed", "5", "--augment-seed", "9"])
    assert fine_tuning.seed == 5 and fine_tuning.effective_augment_seed == 9


def test_fine_tuning_flags_are_carried_into_the_config():
    config = parse_args(["--initial-weights", "runs/x/best.keras", "--average-last-epochs", "4"])
    assert config.initial_weights == (Path("runs/x/best.keras"),) and config.average_last_epochs == 4


def test_initial_weights_repeat_for_a_soup_and_default_to_none():
    assert parse_args([]).initial_weights == ()
    config = parse_args(["--initial-weights", "a/best.keras", "--initial-weights", "b/best.keras"])
    assert config.initial_weights == (Path("a/best.keras"), Path("b/best.keras"))


@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--batch-size", "-1"], ["--learning-rate", "0"]])
def test_out_of_range_values_exit_with_status_2(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(flags)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_config_is_saved_and_restored_through_json():
    config = parse_args(["--label-smoothing", "0.1"])
    assert TrainConfig.model_validate(config.model_dump(mode="json")) == config
