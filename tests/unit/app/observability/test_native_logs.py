"""TensorFlow's native start-up notices, printed twice on stderr in absl's format, come out once each
as log lines of the service's format; Python's own writes are left alone."""

from __future__ import annotations

import io
import logging
import os
import sys

import pytest

from app.observability.logging import configure_logging, find_service_handler
from app.observability.native_logs import parse_native_lines, relayed_native_stderr

pytestmark = pytest.mark.unit

# What `import tensorflow` (2.21, CPU) prints: two copies of absl, each with its own preamble.
ONEDNN = (
    "oneDNN custom operations are on. You may see slightly different numerical results due to "
    "floating-point round-off errors from different computation orders. To turn them off, set the "
    "environment variable `TF_ENABLE_ONEDNN_OPTS=0`."
)
TENSORFLOW_START_UP = f"""\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796198314.727468   12918 port.cc:153] {ONEDNN}
I0000 00:00:1796198314.763455   12918 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use \
available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate \
compiler flags.
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796198316.699996   12918 port.cc:153] {ONEDNN}
"""


def test_each_distinct_notice_is_kept_once_with_its_continuation_lines():
    notices = parse_native_lines(TENSORFLOW_START_UP)
    assert [(level, source) for level, source, _ in notices] == [
        (logging.INFO, "port.cc:153"),
        (logging.INFO, "cpu_feature_guard.cc:227"),
    ]
    assert notices[0][2] == ONEDNN
    assert notices[1][2].endswith("performance-critical operations. To enable the following instructions: "
                                  "AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate "
                                  "compiler flags.")  # fmt: skip


def test_absl_severities_become_log_levels_and_stray_lines_warnings():
    text = (
        "W0000 00:00:1.5 7 a.cc:1] slow\nE0000 00:00:1.5 7 b.cc:2] broken\nF0000 00:00:1.5 7 c.cc:3] fatal\n"
    )
    assert [level for level, _, _ in parse_native_lines(text)] == [
        logging.WARNING,
        logging.ERROR,
        logging.CRITICAL,
    ]
    assert parse_native_lines("plain words\n") == [(logging.WARNING, "stderr", "plain words")]
    assert parse_native_lines("") == []


def test_native_stderr_inside_the_block_is_relayed_once_in_the_service_format(capfd):
    configure_logging("INFO", "text")
    handler = find_service_handler()
    log = io.StringIO()
    previous_stream = handler.setStream(log)
    try:
        with relayed_native_stderr():
            os.write(2, TENSORFLOW_START_UP.encode())
            logging.getLogger("app.test").warning("python logging line")
            sys.stderr.write("python stderr line\n")
    finally:
        handler.setStream(previous_stream)
    lines = log.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(f" INFO app.native {ONEDNN} source=port.cc:153")
    assert " INFO app.native This TensorFlow binary is optimized" in lines[1]
    # Python's own writes went to stderr as they were, not through the relay.
    _, stderr = capfd.readouterr()
    assert "WARNING app.test python logging line" in stderr and "python stderr line" in stderr
    assert "oneDNN" not in stderr and "absl" not in stderr


def test_the_relay_restores_stderr_and_reports_what_came_before_an_error(capfd):
    configure_logging("INFO", "text")
    handler = find_service_handler()
    log = io.StringIO()
    previous_stream = handler.setStream(log)
    try:
        with pytest.raises(ImportError), relayed_native_stderr():
            os.write(2, b"E0000 00:00:1.5 7 loader.cc:9] cannot open libcuda.so.1\n")
            raise ImportError("no such library")
    finally:
        handler.setStream(previous_stream)
    assert log.getvalue().rstrip().endswith("ERROR app.native cannot open libcuda.so.1 source=loader.cc:9")
    os.write(2, b"after the block\n")
    assert capfd.readouterr().err == "after the block\n"


def test_a_handler_made_inside_the_block_writes_to_stderr_after_it(capfd):
    # TensorFlow's logger takes `sys.stderr` when it is imported, i.e. inside the block.
    imported = logging.getLogger("test.imported.inside.the.block")
    with relayed_native_stderr():
        handler = logging.StreamHandler(sys.stderr)
        imported.addHandler(handler)
    try:
        imported.warning("still heard after the block")
        assert "still heard after the block" in capfd.readouterr().err
        assert not handler.stream.closed
    finally:
        imported.removeHandler(handler)
