"""`make train`, the shipped model's recipe: its three runs train with the same flags, in bfloat16 mixed
precision only where the CPU computes bfloat16 (elsewhere it is emulated, slower than float32), and
`TRAIN_FLAGS=` gives the float32 recipe; at the end it prints the recipe's wall time and keeps it beside
the runs; `bench.read_validation` splits the same datasets the same way. Read from `make -n`, which
prints the commands and runs none."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from testkit.shared_data import RECIPE_DATASETS, REPO_ROOT, SHARED_DATA_DIR
from training.config import parse_args

pytestmark = pytest.mark.unit

MAKE_VARIABLES = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "TRAIN_FLAGS", "TRAIN_RUNS_DIR"}


def printed_recipe(*overrides: str, runs_dir: str = "runs/dry-run") -> str:
    # As a make of its own, even under `make test`: a nested make inherits MAKEFLAGS and would print
    # "Entering/Leaving directory" lines among the commands.
    environment = {name: value for name, value in os.environ.items() if name not in MAKE_VARIABLES}
    return subprocess.run(
        ["make", "-n", "--no-print-directory", "train", f"TRAIN_RUNS_DIR={runs_dir}", *overrides],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def training_commands(*overrides: str) -> list[str]:
    printed = printed_recipe(*overrides)
    # Continuation lines joined: one string per `training.run` command.
    commands = re.sub(r"\\\n\s*", " ", printed).splitlines()
    return [command for command in commands if "-m training.run" in command]


def cpu_computes_bfloat16() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.exists() else set()
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def test_the_three_runs_train_in_mixed_precision_exactly_where_the_cpu_has_bfloat16():
    commands = training_commands()

    assert [re.search(r"--run-name (\S+)", command).group(1) for command in commands] == [
        "base",
        "refine",
        "model",
    ]
    assert {"--mixed-precision" in command.split() for command in commands} == {cpu_computes_bfloat16()}


def test_empty_train_flags_give_the_float32_recipe():
    commands = training_commands("TRAIN_FLAGS=")

    assert len(commands) == 3 and not any("--mixed-precision" in command for command in commands)


@pytest.mark.parametrize("has_bfloat16", [True, False])
def test_the_default_follows_whether_the_cpu_has_bfloat16(has_bfloat16):
    commands = training_commands(f"HAS_BF16_CPU={'yes' if has_bfloat16 else ''}")

    assert {"--mixed-precision" in command.split() for command in commands} == {has_bfloat16}


def test_the_recipe_ends_by_printing_and_keeping_its_wall_time(tmp_path):
    printed = printed_recipe(runs_dir=str(tmp_path))
    after_the_runs = printed.rsplit("--output-dir models/digits", 1)[1]
    (tmp_path / "started_at").write_text(f"{int(time.time()) - 125}\n")  # started 2 min 5 s ago

    shown = subprocess.run(["bash", "-c", after_the_runs], capture_output=True, text=True, check=True).stdout

    assert re.fullmatch(r"make train: the three runs took 2 min [5-9] s wall\n", shown)
    assert (tmp_path / "wall_time.txt").read_text() == shown


def test_the_validation_numbers_benchmark_splits_the_recipes_datasets_as_its_runs_do():
    # bench.read_validation writes numbers from the validation split of make train's runs: the split
    # follows the datasets, their repeats, the seed and the validation share, so they must not drift.
    commands = training_commands(f"SHARED_DATA={SHARED_DATA_DIR}")
    benchmark = parse_args(RECIPE_DATASETS)

    for command in commands:
        run = parse_args(command.split("-m training.run", 1)[1].split())
        assert run.datasets == benchmark.datasets
        assert run.repeats_by_source == benchmark.repeats_by_source
        assert (run.seed, run.validation_fraction) == (benchmark.seed, benchmark.validation_fraction)
        assert run.allow_download == benchmark.allow_download
