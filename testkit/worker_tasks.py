"""Module-level tasks for the decode workers' tests: importable by name in a worker process."""

from __future__ import annotations

import os
import time

from digits.errors import NoDigitFoundError


def pid_after(seconds: float) -> int:
    """Sleeps, then returns the worker's process ID."""
    time.sleep(seconds)
    return os.getpid()


def refuse_the_image(detail: str) -> None:
    """Raises the domain error a blank upload gets."""
    raise NoDigitFoundError(detail)


def allocate(byte_count: int) -> int:
    """Allocates and touches `byte_count` bytes; returns the worker's process ID."""
    block = bytearray(byte_count)
    block[:: 1 << 20] = b"x" * len(block[:: 1 << 20])
    return os.getpid()


def die_by(signal_number: int) -> None:
    """Ends the worker with `signal_number`, as a decoder's crash (SIGSEGV) or the OOM killer would."""
    os.kill(os.getpid(), signal_number)
    time.sleep(10)  # not reached: the signal's default action ends the process


def is_process_alive(pid: int) -> bool:
    """Whether a process of this ID exists (for checking that a worker was killed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
