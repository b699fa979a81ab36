"""argv (list of str) -> a validated pydantic model, with one flag per field of the model.

Each flag, its default and its help text are written once, in the model: the flag is named after the
field (`learning_rate` -> `--learning-rate`) unless a `Flag` in the field's metadata names it, the
default is the field's default and the help is its `description`. Fields of nested models get flags of
their own, so the model keeps its shape (and the model card its sections). A boolean that is on by
default becomes `--no-<name>` (any `enable_` or `allow_` prefix left off), one that is off `--<name>`;
a tuple becomes a repeatable flag. The model validates every value, and an error names the flag.
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, NoReturn, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

BOOLEAN_PREFIXES = ("enable_", "allow_")
ModelT = TypeVar("ModelT", bound=BaseModel)


class Flag:
    """Field metadata for a flag whose name does not follow from the field's, or that needs a metavar.

    Args:
        names: the flag's names, the first shown in the help and the rest accepted as aliases.
        metavar: the placeholder of the value in the help, e.g. "CHECKPOINT".
    """

    def __init__(self, *names: str, metavar: str | None = None) -> None:
        self.names = names
        self.metavar = metavar


@dataclass(frozen=True)
class FieldFlag:
    """One leaf field of a model and the flag that sets it."""

    path: str  # dotted through nested models, e.g. "static_augment.copies_per_image"; the argparse dest
    names: tuple[str, ...]
    field: FieldInfo

    @property
    def default(self) -> Any:
        return self.field.get_default(call_default_factory=True)

    @property
    def is_switch(self) -> bool:
        return self.field.annotation is bool

    @property
    def is_repeatable(self) -> bool:
        return get_origin(self.field.annotation) is tuple

    @property
    def value_type(self) -> Any:
        """The type of one value on the command line: a tuple's item type; `int | None` reads as int."""
        annotation = self.field.annotation
        if self.is_repeatable:
            annotation = get_args(annotation)[0]
        if get_origin(annotation) in (Union, types.UnionType):
            annotation = next(part for part in get_args(annotation) if part is not type(None))
        return annotation


def list_field_flags(model_class: type[BaseModel], prefix: str = "") -> list[FieldFlag]:
    """Every leaf field of the model, nested models walked in field order, with its flag's names."""
    flags = []
    for name, field in model_class.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            flags.extend(list_field_flags(field.annotation, f"{prefix}{name}."))
            continue
        names = _flag_metadata(field).names or _derive_flag_names(name, field)
        flags.append(FieldFlag(f"{prefix}{name}", names, field))
    return flags


def _flag_metadata(field: FieldInfo) -> Flag:
    return next((item for item in field.metadata if isinstance(item, Flag)), Flag())


def _derive_flag_names(name: str, field: FieldInfo) -> tuple[str, ...]:
    if field.annotation is not bool:
        return (f"--{name.replace('_', '-')}",)
    stem = next((name.removeprefix(p) for p in BOOLEAN_PREFIXES if name.startswith(p)), name)
    return (f"--{'no-' if field.get_default() else ''}{stem.replace('_', '-')}",)


class FlagArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line that names the flag, "prog: error: --flag: message",
    and exit with status 2 (argparse's own print the usage, then "argument --flag: message")."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message.removeprefix('argument ')}\n")


def bounded_value(value_type: type, **bounds: float) -> Callable[[str], Any]:
    """An argparse `type=`: str -> a value_type within pydantic bounds (ge, gt, le, lt), refused with the
    message `training.run` gives, e.g. "--version: Input should be greater than or equal to 1"."""
    finite = {"allow_inf_nan": False} if value_type is float else {}
    return _converter(Annotated[value_type, Field(**bounds, **finite)])


def describe_validation_error(error: ValidationError, flag_by_path: dict[str, str] | None = None) -> str:
    """A pydantic ValidationError -> "name: message; ...", without pydantic's wording around the messages
    (its title, the input repeated, a link to its documentation).

    Args:
        error: what pydantic found.
        flag_by_path: the flag of each dotted field path: a problem is named by the flag of the deepest
            field it names, or by its message alone (a rule across fields names its flags itself).
            None: named by the field path, for values read from a file.
    """
    problems = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ")
        location = [str(part) for part in problem["loc"]]  # e.g. ("initial_weights", 0)
        if flag_by_path is None:
            name = ".".join(location)
        else:
            paths = (".".join(location[:end]) for end in range(len(location), 0, -1))
            name = next((flag_by_path[path] for path in paths if path in flag_by_path), "")
        problems.append(f"{name}: {message}" if name else message)
    return "; ".join(problems)


class ModelArgumentParser(FlagArgumentParser, Generic[ModelT]):
    """An ArgumentParser with one flag per field of `model_class`; `parse_model` returns the model.

    Errors (an unknown flag, a value of the wrong type, a value the model refuses) exit with status 2
    and one line on stderr that names the flag, e.g. "--epochs: Input should be greater than or equal
    to 1".
    """

    def __init__(self, model_class: type[ModelT], **parser_options: Any) -> None:
        super().__init__(**parser_options)
        self.model_class = model_class
        self.field_flags = list_field_flags(model_class)
        groups: dict[str, argparse._ArgumentGroup] = {}
        for field_flag in self.field_flags:
            section = field_flag.path.partition(".")[0] if "." in field_flag.path else ""
            if section and section not in groups:
                groups[section] = self.add_argument_group(model_class.model_fields[section].description)
            _add_flag(groups.get(section, self), field_flag)

    def parse_model(
        self,
        argv: Sequence[str] | None = None,
        adjust: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> ModelT:
        """Parses argv into the model.

        Args:
            argv: the flags; None reads `sys.argv`.
            adjust: rewrites the nested dict of values (typed, not yet validated by the model), for
                rules across flags such as "--quick means one epoch".

        Returns:
            The validated model; every field not given on the command line has its default.
        """
        values: dict[str, Any] = {}
        for path, value in vars(self.parse_args(argv)).items():
            *sections, name = path.split(".")
            section = values
            for section_name in sections:
                section = section.setdefault(section_name, {})
            section[name] = value
        try:
            return self.model_class.model_validate(adjust(values) if adjust else values)
        except ValidationError as error:
            flag_by_path = {field_flag.path: field_flag.names[0] for field_flag in self.field_flags}
            self.error(describe_validation_error(error, flag_by_path))


def _add_flag(parser: argparse._ActionsContainer, field_flag: FieldFlag) -> None:
    default = field_flag.default
    description = field_flag.field.description or ""
    options: dict[str, Any]
    if field_flag.is_switch:
        help_text = f"{'turn off ' if default else ''}{description} (default: {'on' if default else 'off'})"
        options = {"action": "store_const", "const": not default}
    else:
        repeatable = "; repeatable" if field_flag.is_repeatable else ""
        help_text = f"{description}{repeatable} (default: {_show(default)})"
        options = {
            "action": _ReplaceDefaultThenAppend if field_flag.is_repeatable else "store",
            "type": _converter(field_flag.value_type),
            "metavar": _flag_metadata(field_flag.field).metavar
            or field_flag.names[0][2:].replace("-", "_").upper(),
        }
    # argparse formats help with %-placeholders: a literal % (in a path, say) must be doubled.
    parser.add_argument(
        *field_flag.names, dest=field_flag.path, default=default, help=help_text.replace("%", "%%"), **options
    )


class _ReplaceDefaultThenAppend(argparse.Action):
    """argparse's "append" adds to a non-empty default; a given flag replaces the default instead."""

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        current = getattr(namespace, self.dest)
        setattr(namespace, self.dest, (*(() if current is self.default else current), value))


def _converter(annotation: Any) -> Callable[[str], Any]:
    """str -> a value of the type (bounds are the model's to check, after every flag is read)."""
    if annotation is float:  # "nan" would otherwise pass the type and meet a bound it is never within
        annotation = Annotated[float, Field(allow_inf_nan=False)]
    adapter = TypeAdapter(annotation)

    def convert(text: str) -> Any:
        try:
            return adapter.validate_strings(text)
        except ValidationError as error:
            raise argparse.ArgumentTypeError(error.errors()[0]["msg"]) from error

    return convert


def _show(default: Any) -> str:
    if default is None or default == ():
        return "none"
    if isinstance(default, tuple):
        return ", ".join(str(item) for item in default)
    return str(default)
