"""The machine a benchmark ran on, in words, and how busy it was: printed beside every figure."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine_description() -> str:
    """Core count, CPU model, Python version and OS, e.g. "2 CPU cores (AMD EPYC ...), Python 3.11"."""
    cpu = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    return f"{os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}, {platform.system()}"


def load_average() -> str:
    """The 1-minute load average: above the core count, other processes competed for the CPU."""
    return f"{os.getloadavg()[0]:.2f}"
