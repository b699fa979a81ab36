"""The `digitserve` command, run as a user runs it (the installed console script), against the real
service process and in process (`--local`): CSV rows that are the service's answers, and one-line
errors with their exit status."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from testkit.images import encode_png
from testkit.server import RunningServer, free_port, running_service
from testkit.written_numbers import load_digit_pool, write_number

pytestmark = pytest.mark.integration

# The console script pip installed beside this interpreter (pyproject.toml [project.scripts]).
DIGITSERVE = Path(sys.executable).parent / "digitserve"
COMMAND_TIMEOUT_SECONDS = 180


def run_digitserve(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DIGITSERVE), *arguments], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS
    )


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The real service process (`python -m app`) with the fixture model."""
    log_path = tmp_path_factory.mktemp("cli") / "service.log"
    with running_service(free_port(), {"DIGITSERVE_MODEL_DIR": str(models_dir)}, log_path) as running:
        yield running


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory, mnist_test_samples) -> Path:
    """A folder of 7 MNIST test digits (4 of them in a sub-folder) and a blank page."""
    images, _ = mnist_test_samples
    folder = tmp_path_factory.mktemp("scans")
    (folder / "more").mkdir()
    for index in range(7):
        (folder / ("more" if index >= 3 else ".") / f"digit-{index}.png").write_bytes(
            encode_png(images[index])
        )
    (folder / "blank.png").write_bytes(encode_png(np.zeros((28, 28), dtype=np.uint8)))
    return folder


@pytest.fixture(scope="module")
def numbers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of three numbers of 2-4 MNIST test digits, drawn as scans."""
    pool = load_digit_pool("mnist", "test", limit=500)
    rng = np.random.default_rng(1602)
    folder = tmp_path_factory.mktemp("numbers")
    for count in (2, 3, 4):
        (folder / f"number-{count}.png").write_bytes(encode_png(write_number(pool, count, rng).image))
    return folder


def test_predict_writes_the_services_answer_for_each_image_of_a_folder(server, scans, tmp_path):
    out = tmp_path / "digits.csv"
    completed = run_digitserve(
        "predict", str(scans), "--url", server.base_url, "--csv", str(out), "--batch-size", "3"
    )
    assert completed.returncode == 0, completed.stderr
    rows = rows_of(out.read_text())
    assert [row["file"] for row in rows] == [
        str(scans / "blank.png"),
        *(str(scans / f"digit-{index}.png") for index in range(3)),
        *(str(scans / "more" / f"digit-{index}.png") for index in range(3, 7)),
    ]
    assert rows[0] == {
        "file": str(scans / "blank.png"),
        "digit": "",
        "confidence": "",
        "unsure": "true",
        "reason": "no_digit_found",
    }
    for row in rows[1:]:
        answer = httpx.post(
            f"{server.base_url}/predict", files={"file": Path(row["file"]).read_bytes()}
        ).json()
        assert row["digit"] == str(answer["digit"]) and row["unsure"] == str(answer["unsure"]).lower()
        assert float(row["confidence"]) == pytest.approx(answer["confidence"], abs=1e-4)
        assert row["reason"] == (answer["reason"] or "")
    # Not a terminal: no progress bar, only the summary.
    (summary,) = completed.stderr.splitlines()
    assert summary.startswith("digitserve: 8 images: 7 read (") and summary.endswith(
        "), 1 not (no_digit_found: 1)"
    )
    assert completed.stdout == ""


def test_read_writes_each_numbers_text_and_digits(server, numbers):
    completed = run_digitserve("read", str(numbers), "--url", server.base_url)
    assert completed.returncode == 0, completed.stderr
    rows = rows_of(completed.stdout)
    assert [Path(row["file"]).name for row in rows] == ["number-2.png", "number-3.png", "number-4.png"]
    for row in rows:
        answer = httpx.post(f"{server.base_url}/read", files={"file": Path(row["file"]).read_bytes()}).json()
        assert (row["text"], row["reason"]) == (answer["text"], answer["reason"] or "")
        assert [pair.split(":")[0] for pair in row["digits"].split()] == list(answer["text"])


def test_local_reads_the_same_digits_and_numbers_as_the_service(server, scans, numbers, models_dir):
    by_service = run_digitserve("predict", str(scans), str(numbers), "--url", server.base_url)
    locally = run_digitserve("predict", str(scans), str(numbers), "--local", "--model-dir", str(models_dir))
    assert locally.returncode == 0, locally.stderr
    service_rows, local_rows = rows_of(by_service.stdout), rows_of(locally.stdout)
    assert [(row["file"], row["digit"], row["unsure"], row["reason"]) for row in local_rows] == [
        (row["file"], row["digit"], row["unsure"], row["reason"]) for row in service_rows
    ]
    for local_row, service_row in zip(local_rows, service_rows, strict=True):
        if local_row["confidence"]:
            assert float(local_row["confidence"]) == pytest.approx(float(service_row["confidence"]), abs=2e-4)
    read_by_service = run_digitserve("read", str(numbers), "--url", server.base_url)
    read_locally = run_digitserve("read", str(numbers), "--local", "--model-dir", str(models_dir))
    assert [row["text"] for row in rows_of(read_locally.stdout)] == [
        row["text"] for row in rows_of(read_by_service.stdout)
    ]
    # TensorFlow's start-up notices are not the command's to show.
    (summary,) = read_locally.stderr.splitlines()
    assert summary.startswith("digitserve: 3 images: 3 read (")


def test_an_unreachable_service_is_one_line_and_exit_status_1(scans):
    url = f"http://127.0.0.1:{free_port()}"
    completed = run_digitserve("predict", str(scans), "--url", url)
    assert completed.returncode == 1
    (line,) = completed.stderr.splitlines()
    assert line.startswith(f"digitserve: error: cannot reach the service at {url}: ")
    assert line.endswith("is it running (`digitserve serve`)? or read in this process with --local")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["predict", "nowhere.png"], "digitserve: error: nowhere.png: no such file or folder"),
        (
            ["read", "{scans}", "--url", "127.0.0.1:8000"],
            "digitserve: error: --url: '127.0.0.1:8000' is not an http:// or https:// URL",
        ),
        (
            ["predict", "{scans}", "--local", "--model-dir", "{scans}/none"],
            "digitserve: error: model directory {scans}/none does not exist",
        ),
    ],
    ids=["missing path", "bad url", "no model"],
)
def test_a_bad_command_line_is_one_line_and_a_nonzero_exit_status(scans, arguments, message):
    completed = run_digitserve(*(argument.format(scans=scans) for argument in arguments))
    (line,) = completed.stderr.splitlines()
    assert line.startswith(message.format(scans=scans))
    assert completed.returncode == (3 if "--local" in arguments else 2)


def test_serve_prints_its_usage_and_its_settings_without_starting(monkeypatch):
    usage = run_digitserve("serve", "--help")
    assert usage.returncode == 0 and usage.stdout.startswith("usage: digitserve serve")
    monkeypatch.setenv("DIGITSERVE_API_KEYS", "cli-test-key-0123456789")
    monkeypatch.setenv("DIGITSERVE_READ_MAX_DIGIT", "12")
    settings = run_digitserve("serve", "--print-settings", "--port", "9100")
    assert settings.returncode == 0
    assert "DIGITSERVE_PORT=9100" in settings.stdout.splitlines() and "cli-test-key" not in settings.stdout
    assert "DIGITSERVE_API_KEYS=<hidden: 1>" in settings.stdout.splitlines()
    assert (
        "warning: DIGITSERVE_READ_MAX_DIGIT is not a setting of the service and is ignored; "
        "did you mean DIGITSERVE_READ_MAX_DIGITS?"
    ) in settings.stderr.splitlines()
