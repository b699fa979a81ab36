"""`digitserve predict | read | serve`: CSV rows from a (fake) service, clear one-line errors with an
exit status, and a progress bar only at a terminal. The same commands against the real service, as
processes: tests/integration/test_cli.py."""

from __future__ import annotations

import csv
import functools
import io

import httpx
import pytest

from digitserve import cli
from digitserve.client import Client
from digitserve.progress import is_progress_shown, progress_bar
from tests.unit.digitserve.fake_service import FakeService

pytestmark = pytest.mark.unit


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def fake(monkeypatch) -> FakeService:
    """The service the commands reach, whatever their --url."""
    service = FakeService()
    monkeypatch.setattr(
        cli, "Client", functools.partial(Client, transport=httpx.MockTransport(service.handle))
    )
    return service


@pytest.fixture
def scans(tmp_path):
    """A folder of three images, the second one unreadable to the fake service."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ["a.png", "bad.png", "c.png"]:
        (folder / name).write_bytes(b"image")
    return folder


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_predict_writes_a_row_per_image_to_the_csv_file_and_a_summary_on_stderr(
    fake, scans, tmp_path, capsys
):
    out = tmp_path / "digits.csv"
    status = cli.main(["predict", str(scans), "--csv", str(out), "--batch-size", "2"])
    assert status == 0
    assert read_csv(out.read_text()) == [
        ["file", "digit", "confidence", "unsure", "reason"],
        [str(scans / "a.png"), "7", "0.9912", "false", ""],
        [str(scans / "bad.png"), "", "", "true", "no_digit_found"],
        [str(scans / "c.png"), "7", "0.9912", "false", ""],
    ]
    assert fake.uploaded_names() == [["a.png", "bad.png"], ["c.png"]]
    captured = capsys.readouterr()
    # stderr is no terminal here: the summary only, no progress bar.
    assert captured.out == ""
    assert captured.err == "digitserve: 3 images: 2 read (0 unsure), 1 not (no_digit_found: 1)\n"


def test_read_writes_each_number_with_its_digits_to_standard_output(fake, scans, capsys):
    assert cli.main(["read", str(scans / "a.png"), "--url", "http://digits.example:9000"]) == 0
    assert read_csv(capsys.readouterr().out) == [
        ["file", "text", "unsure", "reason", "digits"],
        [str(scans / "a.png"), "42", "true", "unsure_digit", "4:0.9912 2:0.9912"],
    ]
    assert [str(request.url) for request in fake.requests] == ["http://digits.example:9000/read/batch"]


def test_the_api_key_comes_from_the_option_or_the_client_variable(fake, scans, monkeypatch):
    monkeypatch.setenv("DIGITSERVE_CLIENT_API_KEY", "from-the-environment-0123")
    assert cli.main(["predict", str(scans / "a.png"), "--api-key", "from-the-option-0123456"]) == 0
    assert fake.requests[-1].headers["x-api-key"] == "from-the-option-0123456"


def test_a_missing_path_is_one_line_and_exit_status_2(fake, tmp_path, capsys):
    assert cli.main(["predict", str(tmp_path / "nowhere.png")]) == 2
    assert (
        capsys.readouterr().err == f"digitserve: error: {tmp_path / 'nowhere.png'}: no such file or folder\n"
    )
    assert fake.requests == []


def test_a_bad_url_is_one_line_and_exit_status_2(fake, scans, capsys):
    assert cli.main(["predict", str(scans), "--url", "localhost:8000"]) == 2
    assert capsys.readouterr().err == (
        "digitserve: error: --url: 'localhost:8000' is not an http:// or https:// URL, e.g. http://127.0.0.1:8000\n"
    )


def test_a_mistyped_url_leaves_the_csv_of_an_earlier_run_as_it_was(fake, scans, tmp_path):
    earlier = tmp_path / "digits.csv"
    earlier.write_text("file,digit,confidence,unsure,reason\nold.png,3,0.9900,false,\n")
    assert cli.main(["predict", str(scans), "--url", "htp://127.0.0.1:8000", "--csv", str(earlier)]) == 2
    assert earlier.read_text() == "file,digit,confidence,unsure,reason\nold.png,3,0.9900,false,\n"


def test_a_csv_file_that_cannot_be_written_is_one_line_and_exit_status_2(fake, scans, tmp_path, capsys):
    assert cli.main(["predict", str(scans), "--csv", str(tmp_path / "no" / "such" / "folder.csv")]) == 2
    assert capsys.readouterr().err.startswith("digitserve: error: --csv ")


def test_a_refused_key_stops_the_run_with_what_to_do(fake, scans, capsys):
    fake.refuse(401, {"detail": "missing or invalid API key", "code": "unauthorized"})
    assert cli.main(["predict", str(scans)]) == 1
    assert capsys.readouterr().err == (
        "digitserve: error: the service at http://127.0.0.1:8000 answered 401 unauthorized: missing or "
        "invalid API key; give the service's key with --api-key or DIGITSERVE_CLIENT_API_KEY\n"
    )


def test_a_service_still_busy_after_the_attempts_stops_the_run(fake, scans, capsys):
    for _ in range(2):
        fake.refuse(503, {"detail": "the queue is full", "code": "queue_full"}, **{"Retry-After": "0"})
    assert cli.main(["predict", str(scans), "--max-attempts", "2"]) == 1
    assert capsys.readouterr().err.endswith(
        "answered 503 queue_full: the queue is full; still busy after 2 attempts (--max-attempts)\n"
    )
    assert len(fake.requests) == 2


@pytest.mark.parametrize("option", [["--batch-size", "0"], ["--max-attempts", "many"], ["--timeout", "-1"]])
def test_bad_option_values_are_refused_by_the_command_line(fake, scans, option, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["predict", str(scans), *option])
    assert exited.value.code == 2 and f"{option[0]}: " in capsys.readouterr().err


def test_the_commands_are_listed_by_help(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    usage = capsys.readouterr().out
    assert exited.value.code == 0 and all(command in usage for command in ("serve", "predict", "read"))


def test_serve_print_settings_shows_the_settings_with_the_keys_hidden(monkeypatch, capsys):
    monkeypatch.setenv("DIGITSERVE_API_KEYS", "first-key-0123456789")
    assert cli.main(["serve", "--print-settings", "--host", "0.0.0.0"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "DIGITSERVE_HOST=0.0.0.0" in printed and "DIGITSERVE_API_KEYS=<hidden: 1>" in printed
    assert not any("first-key" in line for line in printed)


def test_the_progress_bar_is_drawn_at_a_terminal_only_and_can_be_turned_off():
    assert is_progress_shown(FakeTerminal(), is_disabled=False)
    assert not is_progress_shown(FakeTerminal(), is_disabled=True)
    assert not is_progress_shown(io.StringIO(), is_disabled=False)


def test_the_progress_bar_counts_the_images_done():
    terminal = FakeTerminal()
    with progress_bar(3, "predict", terminal) as advance:
        for _ in range(3):
            advance(1)
    assert "3/3" in terminal.getvalue() and "predict" in terminal.getvalue()


class ClosedPipe(io.StringIO):
    """stdout piped into `head`, which has already exited: every write breaks the pipe."""

    def __init__(self, file_descriptor: int) -> None:
        super().__init__()
        self._file_descriptor = file_descriptor

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        return self._file_descriptor


def test_a_reader_that_stops_reading_ends_the_run_quietly(fake, scans, monkeypatch, capsys, tmp_path):
    sink = open(tmp_path / "stdout", "w")  # stands in for the pipe's file descriptor
    monkeypatch.setattr(cli.sys, "stdout", ClosedPipe(sink.fileno()))
    try:
        status = cli.main(["predict", str(scans), "--no-progress"])
    finally:
        sink.close()
    assert status == cli.EXIT_FAILED
    assert "error" not in capsys.readouterr().err  # no "None: Broken pipe"
