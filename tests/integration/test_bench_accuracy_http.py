"""Accuracy through HTTP against the model alone, per test set: what `python -m bench.accuracy_http` reports.

The accuracies are measured by the benchmark, never asserted here (the fixture model is trained one
epoch); these tests pin what is sent, how each set is scored, and what the script prints and writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from testkit.images import encode_png
from testkit.labelled_sets import check_set_name, load_labelled_set, worst_writers
from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

SCRIPT_TIMEOUT_SECONDS = 300
PAPER_WHITE = 255


def run_accuracy_script(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.accuracy_http", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_SECONDS,
    )


def write_digit_tree(root: Path, mnist_test_samples: tuple[np.ndarray, np.ndarray]) -> None:
    """Two MNIST digits of each of 0 and 1 as dark-on-light PNG files, and a blank page filed under 1."""
    images, labels = mnist_test_samples
    for digit in (0, 1):
        folder = root / str(digit)
        folder.mkdir(parents=True)
        for position, index in enumerate(np.flatnonzero(labels == digit)[:2]):
            (folder / f"w{position}-1-{digit}.png").write_bytes(encode_png(PAPER_WHITE - images[index]))
    (root / "1" / "blank-1-1.png").write_bytes(encode_png(np.full((28, 28), PAPER_WHITE, np.uint8)))


def test_a_folder_set_sends_each_file_as_it_is_and_scores_the_model_as_training_reads_it(
    tmp_path: Path, mnist_test_samples: tuple[np.ndarray, np.ndarray]
) -> None:
    write_digit_tree(tmp_path, mnist_test_samples)

    labelled_set = load_labelled_set(f"folder={tmp_path}", limit=10)

    names = ["0/w0-1-0.png", "0/w1-1-0.png", "1/blank-1-1.png", "1/w0-1-1.png", "1/w1-1-1.png"]
    assert labelled_set.file_names == [Path(name).name for name in names]
    assert labelled_set.uploads == [(tmp_path / name).read_bytes() for name in names]
    assert labelled_set.labels.tolist() == [0, 0, 1, 1, 1]
    assert labelled_set.has_model_image.tolist() == [True, True, False, True, True]
    assert labelled_set.writers is None


def test_a_limited_folder_set_keeps_files_of_every_digit(tmp_path: Path, mnist_test_samples) -> None:
    write_digit_tree(tmp_path, mnist_test_samples)

    assert load_labelled_set(f"folder={tmp_path}", limit=2).labels.tolist() == [0, 1]


def test_the_worst_writers_are_those_with_the_lowest_accuracy() -> None:
    writers = np.array(["a", "a", "b", "b", "c", "c", "d"])
    is_correct = np.array([True, True, True, False, False, True, False])

    worst = worst_writers(writers, is_correct, count=3)

    assert worst == [
        {"writer": "d", "images": 1, "accuracy_percent": 0.0},
        {"writer": "b", "images": 2, "accuracy_percent": 50.0},
        {"writer": "c", "images": 2, "accuracy_percent": 50.0},
    ]


def test_unknown_set_names_are_refused() -> None:
    assert check_set_name("folder=/data/digits") == "folder=/data/digits"
    for name in ("emnist", "folder=", "cvl=/data"):
        with pytest.raises(ValueError, match="unknown set"):
            check_set_name(name)


def test_the_benchmark_reports_every_set_from_one_service_start(
    models_dir: Path, tmp_path: Path, mnist_test_samples: tuple[np.ndarray, np.ndarray]
) -> None:
    folder = tmp_path / "digits"
    write_digit_tree(folder, mnist_test_samples)
    json_path = tmp_path / "accuracy.json"

    completed = run_accuracy_script(
        *("--model-dir", str(models_dir), "--set", "mnist", "--set", "cvl", "--set", f"folder={folder}"),
        *("--limit", "20", "--concurrency", "4", "--json-out", str(json_path), "--log-dir", str(tmp_path)),
    )

    report = json.loads(json_path.read_text())
    rows = {row["set"]: row for row in report["sets"]}
    assert list(rows) == ["mnist", "cvl", f"folder={folder}"]
    assert [rows[name]["images"] for name in rows] == [20, 20, 5]
    # The blank page: 422 through HTTP, and no digit for the model either.
    assert rows[f"folder={folder}"]["errors"] == 1
    assert rows[f"folder={folder}"]["http_statuses"] == {"200": 4, "422": 1}
    assert 1 <= len(rows["cvl"]["worst_writers"]) <= 5
    assert [target["set"] for target in report["targets"]] == ["mnist", "cvl"]
    assert completed.returncode == (0 if all(target["is_met"] for target in report["targets"]) else 1)
    table_rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")][1:]
    assert [line.split(" | ")[0].removeprefix("| ") for line in table_rows] == list(rows)
    assert "target cvl http accuracy >= 98.0 %" in completed.stdout


def test_the_script_refuses_an_unknown_set() -> None:
    completed = run_accuracy_script("--set", "emnist")

    assert completed.returncode == 2
    assert "unknown set 'emnist'" in completed.stderr
