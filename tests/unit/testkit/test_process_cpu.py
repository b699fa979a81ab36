"""testkit.process_cpu: the CPU time the benchmarks read from /proc, for a process and for its tree."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit.process_cpu import children_cpu_seconds, read_stat, tree_cpu_seconds

pytestmark = pytest.mark.unit

BUSY_CHILD = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ninput()"


def test_a_process_own_cpu_grows_with_its_work_and_names_its_parent():
    before = read_stat(Path(f"/proc/{os.getpid()}/stat"))
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    after = read_stat(Path(f"/proc/{os.getpid()}/stat"))
    assert after.parent_pid == os.getppid()
    assert after.own_seconds - before.own_seconds >= 0.15


def test_the_tree_counts_a_live_child_and_a_reaped_one():
    tree_before = tree_cpu_seconds(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", BUSY_CHILD], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while children_cpu_seconds(os.getpid()).get(child.pid, 0.0) < 0.25:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert tree_cpu_seconds(os.getpid()) - tree_before >= 0.25  # live: its own time
    finally:
        child.communicate(b"\n", timeout=30)
    assert tree_cpu_seconds(os.getpid()) - tree_before >= 0.25  # reaped: the parent's cutime
