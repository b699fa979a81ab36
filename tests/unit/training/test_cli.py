"""A pydantic model becomes a command line: one flag per field, named, defaulted and explained by the
field; values validated by the model, and every error names the flag."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError, model_validator

from training.cli import (
    Flag,
    FlagArgumentParser,
    ModelArgumentParser,
    bounded_value,
    describe_validation_error,
)

pytestmark = pytest.mark.unit


class Colors(BaseModel):
    enable_color: bool = Field(True, description="colored output")
    levels: int = Field(8, ge=2, description="levels per channel, 100% = 256")


class Options(BaseModel):
    inputs: Annotated[tuple[Path, ...], Flag("--input", "-i", metavar="FILE")] = Field(
        (Path("a"), Path("b")), description="files to read"
    )
    allow_network: bool = Field(True, description="network access")
    verbose: bool = Field(False, description="more log lines")
    limit: int | None = Field(None, ge=1, description="most items; none: all")
    colors: Colors = Field(Colors(), description="colors")


def parse(*flags: str) -> Options:
    return ModelArgumentParser(Options, prog="tool").parse_model(list(flags))


def test_flags_are_named_after_the_fields_unless_a_flag_names_them():
    options = parse("--input", "x", "-i", "y", "--no-network", "--verbose", "--limit", "3", "--levels", "4")
    assert options.inputs == (Path("x"), Path("y")) and options.allow_network is False
    assert options.verbose is True and options.limit == 3 and options.colors.levels == 4


def test_a_boolean_on_by_default_gets_a_no_flag_without_its_enable_prefix():
    assert parse("--no-color").colors.enable_color is False


def test_no_flags_give_the_defaults():
    assert parse() == Options()


def test_help_gives_each_flag_its_description_and_default_under_its_section():
    help_text = ModelArgumentParser(Options, prog="tool").format_help()
    assert "files to read; repeatable (default: a, b)" in help_text
    assert "turn off network access (default: on)" in help_text
    assert (
        "more log lines (default: off)" in help_text and "most items; none: all (default: none)" in help_text
    )
    assert "colors:\n  --no-color" in help_text and "100% = 256 (default: 8)" in help_text


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--levels", "1"], "tool: error: --levels: Input should be greater than or equal to 2\n"),
        (["--limit", "0"], "tool: error: --limit: Input should be greater than or equal to 1\n"),
        (["--limit", "all"], "tool: error: --limit: Input should be a valid integer"),
        (["--unknown"], "tool: error: unrecognized arguments: --unknown\n"),
    ],
)
def test_errors_exit_2_with_one_line_naming_the_flag(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(*flags)
    assert exit_info.value.code == 2 and capsys.readouterr().err.startswith(message)


class Picky(BaseModel):
    epochs: int = Field(40, ge=1)
    rate: float = Field(0.5, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _rate_needs_epochs(self) -> Picky:
        if self.rate > 0.9 and self.epochs > 100:
            raise ValueError("--rate above 0.9 needs --epochs of 100 or fewer")
        return self


@pytest.mark.parametrize(
    "flags",
    [["--limit", "0"], ["--levels", "1"], ["--limit", "many"], ["--levels", "1", "--limit", "0"]],
)
def test_errors_name_flags_not_fields_and_carry_no_link_to_the_validation_library(flags, capsys):
    with pytest.raises(SystemExit):
        parse(*flags)

    error = capsys.readouterr().err
    assert "--" in error and error.count("\n") == 1
    assert "pydantic" not in error and "http" not in error and "For further information" not in error
    assert "limit:" not in error.replace("--limit:", "") and "colors.levels" not in error
    assert "validation error" not in error and "input_value" not in error


def test_every_problem_is_named_by_its_flag_and_a_cross_field_rule_by_its_own_words():
    with pytest.raises(ValidationError) as error_info:
        Picky(epochs=0, rate=2.0)
    with pytest.raises(ValidationError) as rule_info:
        Picky(epochs=200, rate=0.95)
    flags = {"epochs": "--epochs", "rate": "--rate"}

    assert describe_validation_error(error_info.value, flags) == (
        "--epochs: Input should be greater than or equal to 1; "
        "--rate: Input should be less than or equal to 1"
    )
    assert (
        describe_validation_error(rule_info.value, flags) == "--rate above 0.9 needs --epochs of 100 or fewer"
    )


def test_values_read_from_a_file_are_named_by_their_field_path():
    with pytest.raises(ValidationError) as error_info:
        Options.model_validate({"colors": {"levels": 1}})

    assert (
        describe_validation_error(error_info.value)
        == "colors.levels: Input should be greater than or equal to 2"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "--version: Input should be greater than or equal to 1"),
        ("two", "--version: Input should be a valid integer"),
        ("", "--version: Input should be a valid integer"),
    ],
)
def test_a_plain_argparse_cli_says_a_bad_value_in_one_line_naming_the_flag(value, message, capsys):
    parser = FlagArgumentParser(prog="tool")
    parser.add_argument("--version", type=bounded_value(int, ge=1))

    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--version", value])

    error = capsys.readouterr().err
    assert (
        exit_info.value.code == 2 and error.startswith(f"tool: error: {message}") and error.count("\n") == 1
    )
    assert "argument" not in error and "usage" not in error and "convert" not in error


def test_a_bounded_number_refuses_nan_and_infinity_as_not_finite(capsys):
    parser = FlagArgumentParser(prog="tool")
    parser.add_argument("--risk", type=bounded_value(float, ge=0.0, lt=1.0))

    assert parser.parse_args(["--risk", "0.25"]).risk == 0.25
    for value in ("nan", "inf"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--risk", value])
        assert "--risk: Input should be a finite number" in capsys.readouterr().err
