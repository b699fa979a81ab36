"""Graceful shutdown: SIGTERM during load -> every accepted request completes, new ones are refused, exit.

Starts the service as it runs in production (uvicorn, one worker, `--timeout-graceful-shutdown 20`,
as `python -m app` and `make serve` do; access log on, to count what the server answered), loads it
at concurrency 64 with mixed valid images, sends SIGTERM, and keeps every client going: each sends
its next request as soon as it is answered and reconnects when the server closes the connection.

It records, per request: answered (status), closed before any response byte (the server had not
accepted it: an idle keep-alive connection closed by the shutdown), or cut off mid-response (a
broken promise). Targets (exit status 1 when one fails): every answer a 200; no response cut off;
as many answers received as the server's access log lists (nothing the server answered was lost);
every reconnection after SIGTERM refused; the process exits within 20 s, by the SIGTERM it re-raises
(uvicorn re-raises the signal after its graceful shutdown, so that a supervisor sees why it stopped:
status -15 here, 143 in a shell) or with status 0. The scenario and its targets: `testkit.shutdown`.

    python -m bench.shutdown [--model-dir models/digits] [--concurrency 64] [--load-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

from bench.machine import load_average, machine_description
from testkit.output_paths import output_file, output_folder
from testkit.server import free_port, running_service
from testkit.shared_data import REPO_ROOT
from testkit.shutdown import (
    ACCESS_LOG_ARGUMENTS,
    PRODUCTION_ARGUMENTS,
    count_access_log_answers,
    failed_targets,
    run_shutdown,
)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--load-seconds", type=float, default=10.0, help="load before the SIGTERM")
    parser.add_argument("--json-out", type=output_file, help="also write the figures as JSON here")
    parser.add_argument(
        "--log-dir", type=output_folder, default=Path("/tmp"), help="the service's log goes here"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    environment = {"DIGITSERVE_MODEL_DIR": str(args.model_dir.resolve())}
    log_path = args.log_dir / "digitserve-shutdown.log"
    load_before = load_average()
    arguments = (*PRODUCTION_ARGUMENTS, *ACCESS_LOG_ARGUMENTS)
    with running_service(free_port(), environment, log_path, arguments) as server:
        report = asyncio.run(run_shutdown(server, args.concurrency, args.load_seconds))
    report.access_log_answers = count_access_log_answers(log_path)
    print(f"{machine_description()}; load average before {load_before}, after {load_average()}")
    for name, value in asdict(report).items():
        print(f"{name:36s} {value}")
    failures = failed_targets(report)
    if args.json_out:
        args.json_out.write_text(json.dumps(asdict(report) | {"failures": failures}, indent=2))
    if failures:
        print("TARGETS FAILED: " + "; ".join(failures))
        sys.exit(1)
    print(
        f"targets met: accepted requests all answered 200, new ones refused, exit in {report.exit_seconds} s"
    )


if __name__ == "__main__":
    main()
