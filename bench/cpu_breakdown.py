"""Where the service's CPU goes, per request: each thread of the service process, and its decode workers.

Starts the service as production runs it (`python -m app`, access log on, the shipped model), loads it
with `hey` at concurrency 32 with the harness's 28x28 PNG and 300x300 photo JPEG, and reads the CPU
time of every thread of the service process (`/proc/PID/task`, grouped by thread name: the event loop
is `python`, TensorFlow's pools `tf_*`, `asyncio_*` the model thread...) and of the decode workers'
tree (the fork server, the workers, and those it has reaped) before and after. Milliseconds per
request; run it alone on the machine (nothing training or benchmarking beside it).

    python -m bench.cpu_breakdown [--requests 4096]   # after ../shared/bench-peers/setup_peers.sh
"""

from __future__ import annotations

import argparse
import os
import re
from collections import Counter
from pathlib import Path

from bench.peers import IMAGES, measure_each_image
from testkit.process_cpu import read_stat, tree_cpu_seconds
from testkit.server import RunningServer
from testkit.shared_data import REPO_ROOT

DECODE_WORKERS = "decode workers (process tree)"
# Threads numbered by their pool (asyncio_0, Thread-12, tf_inter_op_3): one group per pool.
_THREAD_NUMBER = re.compile(r"[-_ ]?\d+\D*$")


def thread_group(name: str) -> str:
    """A thread's name without its number in the pool ("asyncio_3" -> "asyncio")."""
    return _THREAD_NUMBER.sub("", name) or name


def service_cpu_seconds(server: RunningServer) -> Counter[str]:
    """CPU seconds so far of each thread group of the service process, and of its children's trees."""
    seconds: Counter[str] = Counter()
    for task in Path(f"/proc/{server.pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            seconds[thread_group(name)] += read_stat(task / "stat").own_seconds
        except OSError:  # the thread ended between the listing and the read
            continue
    # The whole tree (with what its processes reaped) less the service process's own threads.
    seconds[DECODE_WORKERS] = tree_cpu_seconds(server.pid) - server.cpu_seconds()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=4096)
    parser.add_argument(
        "--assets-dir", type=Path, default=Path(os.environ.get("BENCH_ASSETS", "/tmp/bench-assets"))
    )
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    args = parser.parse_args()
    missing = [name for name in IMAGES.values() if not (args.assets_dir / name).is_file()]
    if missing:
        parser.error(
            f"no {', '.join(missing)} in {args.assets_dir}: run ../shared/bench-peers/setup_peers.sh"
        )
    readings = measure_each_image(
        args.assets_dir,
        args.requests,
        args.model_dir,
        Path("/tmp/digitserve-cpu-breakdown.log"),
        service_cpu_seconds,
    )
    for image, (before, spent, elapsed_seconds) in readings.items():
        spent.subtract(before)
        total_ms = sum(spent.values()) * 1000 / args.requests
        rate = args.requests / elapsed_seconds
        print(f"\n{image}: {args.requests} requests at concurrency 32, {rate:.0f} req/s; "
              f"server CPU {total_ms:.2f} ms/request")  # fmt: skip
        for group, seconds in spent.most_common():
            if seconds > 0:
                ms = seconds * 1000 / args.requests
                print(f"  {group:<32} {ms:6.3f} ms/request {ms / total_ms:6.1%}")


if __name__ == "__main__":
    main()
