"""The service as N processes behind one port: would several processes beat one here?

The service is one process (`app.server`: uvicorn with `workers: 1`); its event loop runs the HTTP
layer, the batcher and the decode workers' bookkeeping under one GIL. This launcher serves the same
app, settings and connection limits as `python -m app`, but as N processes sharing one listening
socket (the kernel hands each new connection to one of them). The socket is made and the processes
forked before TensorFlow is imported, so each loads its own model and runs its own batcher and decode
workers. `python -m bench.peers --processes N` puts it beside the one-process service in the same
harness run; see bench/RESULTS.md for what it measured.

It is a measuring tool, not a way to serve: each process keeps its own metrics and readiness, so
`/metrics` and `/readyz` speak for whichever process answers.

    python -m bench.service_processes --processes 2 --port 8042
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys

import uvicorn

from app import server
from app.settings import Settings

LISTEN_BACKLOG = 2048
STARTUP_FAILURE_STATUS = 3  # uvicorn's, as `python -m app` exits
# After its drain, uvicorn raises the signal it caught again, so a process stopped by SIGTERM or
# SIGINT ends by that signal, as `python -m app` does.
STOPPED_STATUSES = (0, -signal.SIGTERM, -signal.SIGINT)


def serve_one_process(settings: Settings, listener: socket.socket) -> int:
    """One service process on the shared socket, as `app.server.serve` would run it.

    Returns:
        Its exit status: 0 after a shutdown, 3 (uvicorn's) when the start-up failed.
    """
    server.configure_process_logging(settings, access_log=True)
    served_app = server.build_served_app(settings)
    options = server.build_uvicorn_options(settings)
    uvicorn_server = uvicorn.Server(uvicorn.Config(served_app, **options))
    uvicorn_server.run(sockets=[listener])
    return 0 if uvicorn_server.started else STARTUP_FAILURE_STATUS


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    settings = Settings(host=args.host, port=args.port)
    server.raise_open_file_limit(
        settings.http_max_connections * server.OPEN_FILES_PER_CONNECTION + server.OPEN_FILES_RESERVED
    )
    listener = socket.create_server((args.host, args.port), backlog=LISTEN_BACKLOG)
    children = []
    for _ in range(args.processes):
        pid = os.fork()
        if pid == 0:  # a child: serves until SIGTERM, then leaves without the parent's clean-up
            status = 1
            try:
                status = serve_one_process(settings, listener)
            finally:
                os._exit(status)
        children.append(pid)

    def stop_children(signal_number: int, _frame: object) -> None:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) not in STOPPED_STATUSES
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
