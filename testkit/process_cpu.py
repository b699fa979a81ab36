"""CPU time of processes and threads, from /proc: the one reading of `/proc/PID/stat` for the benchmarks
and tests (a service's own threads, its decode workers' tree, the processes of a launcher)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class StatCpu:
    """What one `/proc/.../stat` line says of CPU time.

    Attributes:
        parent_pid: the process's parent (for a thread's `task/TID/stat`: its process's parent).
        own_seconds: user + system time of the process (all its threads) or of the one thread.
        reaped_seconds: user + system time of the children it has waited for.
    """

    parent_pid: int
    own_seconds: float
    reaped_seconds: float


def read_stat(stat_path: Path) -> StatCpu:
    """Reads a `/proc/PID/stat` or `/proc/PID/task/TID/stat` file.

    Raises:
        OSError: the process or thread has ended.
    """
    # The name in parentheses may hold spaces: the fields are counted after its closing one.
    fields = stat_path.read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return StatCpu(int(fields[1]), (utime + stime) / TICKS_PER_SECOND, (cutime + cstime) / TICKS_PER_SECOND)


def all_processes() -> dict[int, StatCpu]:
    """Every process now running, by process ID (those that end during the listing are left out)."""
    processes = {}
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            processes[int(stat_path.parent.name)] = read_stat(stat_path)
        except (OSError, IndexError):
            continue
    return processes


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of `root` and its live descendants, and of the descendants they have reaped."""
    processes = all_processes()
    children: dict[int, list[int]] = {}
    for pid, stat in processes.items():
        children.setdefault(stat.parent_pid, []).append(pid)
    total, frontier = 0.0, [root]
    while frontier:
        pid = frontier.pop()
        if stat := processes.get(pid):
            total += stat.own_seconds + stat.reaped_seconds
        frontier += children.get(pid, [])
    return total


def children_cpu_seconds(parent_pid: int) -> dict[int, float]:
    """Own CPU seconds of each live child of `parent_pid`, by process ID."""
    return {pid: stat.own_seconds for pid, stat in all_processes().items() if stat.parent_pid == parent_pid}
