"""Flags become a validated TrainConfig whose defaults are the issue's recipe; the CLI is generated from
TrainConfig, so each option has one flag, and the flag's default and help are the field's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from training.card import build_model_card
from training.config import TrainConfig, build_parser, parse_args
from training.datasets import DigitSet, DigitSource, TrainValidationSplit

pytestmark = pytest.mark.unit


def test_defaults_follow_the_specified_hyperparameters():
    config = parse_args([])
    assert config.batch_size == 384 and config.learning_rate == 1e-3 and config.seed == 42
    assert config.datasets == ("mnist", "usps")


def test_a_run_promotes_into_a_served_folder_only_when_told_to():
    assert parse_args([]).output_dir is None and parse_args([]).runs_dir == Path("runs")
    assert parse_args(["--output-dir", "models/digits"]).output_dir == Path("models/digits")


def test_a_smoke_test_is_never_promoted_unless_asked(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--quick", "--output-dir", "models/digits"])
    assert exit_info.value.code == 2
    assert "--quick trains a smoke test, never promoted to a served folder" in capsys.readouterr().err
    allowed = parse_args(["--quick", "--output-dir", "models/digits", "--allow-smoke-test"])
    assert allowed.quick and allowed.output_dir == Path("models/digits")


def test_a_promotion_version_needs_a_served_folder(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--version", "5"])
    assert "--version is the version promoted into --output-dir" in capsys.readouterr().err
    assert parse_args(["--version", "5", "--output-dir", "models/digits"]).version == 5


@pytest.mark.parametrize("run_name", ["../up", "a/b", "", "-flag"])
def test_a_run_name_is_one_plain_folder_name(run_name, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--run-name", run_name])
    assert "--run-name" in capsys.readouterr().err


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


def test_a_fine_tunes_start_competes_for_the_final_weights_unless_told_not_to():
    assert parse_args(["--initial-weights", "a/best.keras"]).keep_start_if_best is True
    config = parse_args(["--initial-weights", "a/best.keras", "--no-keep-start-if-best"])
    assert config.keep_start_if_best is False


def test_leaving_out_the_start_without_a_start_exits_2_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--no-keep-start-if-best"])
    assert exit_info.value.code == 2
    assert (
        "--no-keep-start-if-best is about a fine-tune's start: give --initial-weights"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--batch-size", "-1"], ["--learning-rate", "0"]])
def test_out_of_range_values_exit_with_status_2(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(flags)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_config_is_saved_and_restored_through_json():
    config = parse_args(["--label-smoothing", "0.1"])
    assert TrainConfig.model_validate(config.model_dump(mode="json")) == config


def leaf_fields(model_class: type[BaseModel], prefix: str = "") -> dict[str, FieldInfo]:
    """Every option of the model, nested models walked: {"static_augment.copies_per_image": field}."""
    fields: dict[str, FieldInfo] = {}
    for name, field in model_class.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            fields.update(leaf_fields(field.annotation, f"{prefix}{name}."))
        else:
            fields[f"{prefix}{name}"] = field
    return fields


def test_every_option_has_exactly_one_flag_with_the_fields_default_and_description():
    parser = build_parser()
    options = leaf_fields(TrainConfig)
    flags = [action for action in parser._actions if action.dest != "help"]

    assert sorted(action.dest for action in flags) == sorted(options)
    for action in flags:
        field = options[action.dest]
        assert len(action.option_strings) >= 1, action.dest
        assert action.default == field.get_default(), action.dest
        assert field.description and field.description.replace("%", "%%") in action.help, action.dest


def test_no_flags_give_exactly_the_default_config():
    assert parse_args([]) == TrainConfig()


@pytest.mark.parametrize(
    ("flags", "option", "expected"),
    [
        (["--dataset", "usps", "--dataset", "folder=/d"], "datasets", ("usps", "folder=/d")),
        (["--data-dir", "/data"], "cache_dir", Path("/data")),
        (["--cache-dir", "/cache"], "cache_dir", Path("/cache")),
        (["--output-dir", "out"], "output_dir", Path("out")),
        (["--runs-dir", "r"], "runs_dir", Path("r")),
        (["--version", "7", "--output-dir", "out"], "version", 7),
        (["--run-name", "base"], "run_name", "base"),
        (["--output-dir", "out", "--quick", "--allow-smoke-test"], "allow_smoke_test", True),
        (["--epochs", "12"], "epochs", 12),
        (["--batch-size", "64"], "batch_size", 64),
        (["--learning-rate", "2.5e-4"], "learning_rate", 2.5e-4),
        (["--label-smoothing", "0.1"], "label_smoothing", 0.1),
        (["--seed", "3"], "seed", 3),
        (["--average-last-epochs", "6"], "average_last_epochs", 6),
        (["--augment-seed", "13"], "augment_seed", 13),
        (["--outlier-fraction", "0.1"], "outlier_fraction", 0.1),
        (["--no-download"], "allow_download", False),
        (["--quick"], "quick", True),
    ],
)
def test_each_documented_flag_sets_its_option(flags, option, expected):
    assert getattr(parse_args(flags), option) == expected
    assert getattr(parse_args([]), option) != expected


@pytest.mark.parametrize(
    ("flag", "section", "option"),
    [
        ("--no-elastic", "static_augment", "enable_elastic"),
        ("--no-noise", "static_augment", "enable_noise"),
        ("--no-coarse-dropout", "static_augment", "enable_coarse_dropout"),
        ("--no-brightness-contrast", "static_augment", "enable_brightness_contrast"),
        ("--no-inversion", "static_augment", "enable_inversion"),
        ("--no-rotation", "realtime_augment", "enable_rotation"),
        ("--no-shift", "realtime_augment", "enable_shift"),
        ("--no-zoom", "realtime_augment", "enable_zoom"),
    ],
)
def test_each_no_flag_turns_off_its_augmentation_alone(flag, section, option):
    config = parse_args([flag])
    changed = {
        f"{name}.{key}"
        for name in ("static_augment", "realtime_augment")
        for key, value in getattr(config, name)
        if value != getattr(getattr(TrainConfig(), name), key)
    }
    assert changed == {f"{section}.{option}"} and getattr(getattr(config, section), option) is False


def test_static_copies_sets_the_copies_per_image():
    assert parse_args(["--static-copies", "4"]).static_augment.copies_per_image == 4


def test_a_given_repeatable_flag_replaces_the_default_instead_of_adding_to_it():
    assert parse_args(["--dataset", "mnist"]).datasets == ("mnist",)


def test_quick_overrides_the_epochs_even_out_of_range_and_keeps_zero_copies():
    config = parse_args(["--quick", "--epochs", "0", "--static-copies", "0"])
    assert config.epochs == 1 and config.static_augment.copies_per_image == 0


@pytest.mark.parametrize(
    ("flags", "message", "field_name"),
    [
        (["--epochs", "0"], "--epochs: Input should be greater than or equal to 1", "epochs:"),
        (["--learning-rate", "-1"], "--learning-rate: Input should be greater than 0", "learning_rate"),
        (
            ["--dataset", "mnist", "--dataset", "mnist"],
            "--dataset: dataset given more than once: mnist",
            "datasets",
        ),
        (
            ["--static-copies", "11"],
            "--static-copies: Input should be less than or equal to 10",
            "copies_per",
        ),
        (["--version", "0"], "--version: Input should be greater than or equal to 1", "version:"),
        (["--epochs", "many"], "--epochs: Input should be a valid integer", "epochs:"),
        (["--data-dir"], "--data-dir/--cache-dir: expected one argument", "cache_dir"),
    ],
)
def test_a_bad_value_exits_2_with_one_line_naming_the_flag(flags, message, field_name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(flags)

    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert error.count("\n") == 1 and message in error
    assert field_name not in error.replace(message, "") and "validation error" not in error
    assert "errors.pydantic.dev" not in error and "For further information" not in error


def test_repeat_weighs_a_named_dataset_more_and_defaults_to_none():
    assert parse_args([]).repeats_by_source == {}
    config = parse_args(["--dataset", "mnist", "--dataset", "cvl=../cvl", "--repeat", "cvl=3"])
    assert config.repeats_by_source == {"cvl": 3}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--repeat", "cvl=3"], "'cvl' is not one of the --dataset names"),
        (["--dataset", "cvl", "--repeat", "cvl=0"], "TIMES must be a whole number from 1 to 10"),
        (["--dataset", "cvl", "--repeat", "cvl=11"], "TIMES must be a whole number from 1 to 10"),
        (["--dataset", "cvl", "--repeat", "cvl"], "TIMES must be a whole number from 1 to 10"),
        (
            ["--dataset", "cvl", "--repeat", "cvl=2", "--repeat", "cvl=3"],
            "--repeat given more than once for cvl",
        ),
    ],
)
def test_a_bad_repeat_exits_2_naming_it(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(flags)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_outlier_exposure_is_off_by_default():
    assert parse_args([]).outlier_fraction == 0.0


@pytest.mark.parametrize("fraction", ["-0.1", "0.6", "1"])
def test_an_outlier_fraction_outside_0_to_half_exits_2_naming_the_flag(fraction, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--outlier-fraction", fraction])
    assert exit_info.value.code == 2 and "--outlier-fraction:" in capsys.readouterr().err


def test_the_outlier_fraction_is_carried_into_the_model_card():
    digits = DigitSet("combined/train", np.zeros((4, 28, 28), dtype=np.uint8), np.arange(4))
    config = parse_args(["--outlier-fraction", "0.1"])

    sources = [DigitSource(name, digits, None) for name in config.datasets]

    card = build_model_card(1000, sources, TrainValidationSplit(digits, digits), config)

    assert card["config"]["outlier_fraction"] == 0.1
