"""`python -m training.evaluate models/digits --dataset folder=PATH` scores the shipped model on a user's
test-only folder and writes one CSV row per file, leaving the committed model folder as it was."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from testkit.shared_data import REPO_ROOT
from tests.integration.training.cli import run_cli

pytestmark = pytest.mark.integration

SHIPPED_MODEL_DIR = REPO_ROOT / "models" / "digits"
CVL_FILES_PER_DIGIT = 2
EVALUATE_TIMEOUT_SECONDS = 300


@pytest.fixture
def test_only_folder(tmp_path, shared_data_dir) -> Path:
    """root/<digit>/ with two CVL test scans per digit (dark ink on light paper), no train/ folder."""
    root = tmp_path / "my-digits"
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True)
        sources = sorted((shared_data_dir / "cvl" / "test" / str(digit)).iterdir())[:CVL_FILES_PER_DIGIT]
        for source in sources:
            shutil.copy(source, root / str(digit) / source.name)
    return root


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(path), path.stat().st_mtime_ns) for path in folder.rglob("*"))


def test_evaluate_cli_writes_a_result_per_file_of_a_test_only_folder(test_only_folder, tmp_path):
    output_dir = tmp_path / "evaluation"
    model_files_before = _listing(SHIPPED_MODEL_DIR)

    result = run_cli(
        "training.evaluate", str(SHIPPED_MODEL_DIR), "--dataset", f"folder={test_only_folder}",
        "--output-dir", str(output_dir), timeout_seconds=EVALUATE_TIMEOUT_SECONDS,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "| folder/all | 20 |" in result.stdout and f"wrote {output_dir / 'folder_all.csv'}" in result.stdout
    )
    with (output_dir / "folder_all.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["file"] for row in rows] == [str(path) for path in sorted(test_only_folder.glob("*/*.png"))]
    for row in rows:
        assert row["label"] == Path(row["file"]).parent.name
        assert row["predicted"] in {str(digit) for digit in range(10)}
        assert 0.0 <= float(row["confidence"]) <= 1.0 and len(row["confidence"].split(".")[1]) == 4
    # The shipped model reads most of these scans; what it misreads is in the grid.
    assert sum(row["label"] == row["predicted"] for row in rows) >= 14
    assert (output_dir / "confusion_matrix.png").stat().st_size > 1000
    assert _listing(SHIPPED_MODEL_DIR) == model_files_before


def test_evaluate_cli_names_an_unreadable_image_and_exits_2(test_only_folder, tmp_path):
    broken = test_only_folder / "3" / "truncated.png"
    scan = sorted((test_only_folder / "3").glob("*.png"))[0]
    broken.write_bytes(scan.read_bytes()[:40])  # a copy cut short

    result = run_cli(
        "training.evaluate", str(SHIPPED_MODEL_DIR), "--dataset", f"folder={test_only_folder}",
        "--output-dir", str(tmp_path / "evaluation"), timeout_seconds=EVALUATE_TIMEOUT_SECONDS,
    )  # fmt: skip

    assert result.returncode == 2 and f"{broken}: " in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "evaluation").exists()
