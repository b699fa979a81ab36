"""Module-level tasks for the decode workers' tests: importable by name in a worker process; and
`pids_of_overlapping_calls`, which sends them so that each finds its own worker."""

from __future__ import annotations

import asyncio
import ctypes
import os
import time
from typing import Any

from digits.errors import NoDigitFoundError


def pid_after(seconds: float) -> int:
    """Sleeps, then returns the worker's process ID."""
    time.sleep(seconds)
    return os.getpid()


async def pids_of_overlapping_calls(pool: Any, call_count: int, seconds: float = 0.3) -> list[int]:
    """The workers of `call_count` calls of `pid_after(seconds)`, each sent while the earlier ones run.

    Calls sent in the same turn of the event loop go to one worker together (`DecodePool`): spaced
    out, each goes to a free worker if there is one.
    """
    calls = []
    for _ in range(call_count):
        calls.append(asyncio.ensure_future(pool.run(pid_after, seconds)))
        await asyncio.sleep(seconds / 6)
    return list(await asyncio.gather(*calls))


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


def heap_bytes_kept_after_an_upload() -> int:
    """Allocates five 1 MiB buffers at once and frees them, three times (as a photo's pre-processing
    does, letting glibc's own threshold adapt); returns the free bytes its heap keeps (glibc's
    `mallinfo2().fordblks`)."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = _MallInfo2
    for _ in range(3):
        buffers = [libc.malloc(1 << 20) for _ in range(5)]
        for buffer in buffers:
            libc.free(buffer)
    return libc.mallinfo2().fordblks


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks")
        + ("fordblks", "keepcost")
    ]
