"""A pydantic model becomes a command line: one flag per field, named, defaulted and explained by the
field; values validated by the model, and every error names the flag."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from training.cli import Flag, ModelArgumentParser

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
