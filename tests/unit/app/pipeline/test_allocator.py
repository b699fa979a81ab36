"""A pre-processing process keeps its freed image buffers for the next upload instead of handing them
back to the kernel and faulting them in again (`app.pipeline.allocator`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is what is tuned"),
]

PROBE = """
import sys
from app.pipeline.allocator import keep_freed_memory_for_reuse
from testkit.worker_tasks import heap_bytes_kept_after_an_upload
if sys.argv[1] == "tuned":
    assert keep_freed_memory_for_reuse()
print(heap_bytes_kept_after_an_upload())
"""


def heap_bytes_kept(mode: str) -> int:
    """In a fresh process (the allocator's state is per process): the free bytes kept after an upload."""
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(result.stdout)


def test_a_tuned_process_keeps_an_uploads_freed_buffers_for_the_next():
    assert heap_bytes_kept("tuned") >= 5 << 20


def test_an_untuned_process_hands_most_of_them_back():  # what the tuning is for
    assert heap_bytes_kept("untuned") < 4 << 20
