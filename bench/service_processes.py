"""The service as N processes behind one port: would several processes beat one here?

The service is one process (`app.server`: uvicorn with `workers: 1`); its event loop runs the HTTP
layer, the batcher and the decode workers' bookkeeping under one GIL. This launcher runs the same app,
settings and connection limits as `python -m app` (`app.server.serve`) as N processes, each with a
listening socket of its own on the same port (`SO_REUSEPORT`: the kernel spreads new connections
evenly between the sockets, where one shared socket lets whichever process wakes first accept a burst
of them). The sockets are made and the processes forked before TensorFlow is imported, so each loads
its own model and runs its own batcher and decode workers. `python -m bench.peers --processes N` puts
it beside the one-process service in the same harness run; bench/RESULTS.md has what it measured.

It is a measuring tool, not a way to serve: each process keeps its own metrics and readiness, so
`/metrics` and `/readyz` speak for whichever process answers. If one process ends on its own, the
launcher stops the others and exits 1.

    python -m bench.service_processes --processes 2 --port 8042
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys

from app.__main__ import read_settings
from app.server import serve
from app.settings import Settings

LISTEN_BACKLOG = 2048
# After its drain, uvicorn raises the signal it caught again, so a process stopped by SIGTERM or
# SIGINT ends by that signal, as `python -m app` does.
STOPPED_STATUSES = (0, -signal.SIGTERM, -signal.SIGINT)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on host:port beside the others of the launcher (SO_REUSEPORT)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(LISTEN_BACKLOG)
    return listener


def start_process(settings: Settings, listeners: list[socket.socket], index: int) -> int:
    """Forks one service process serving on `listeners[index]`; returns its process ID."""
    pid = os.fork()
    if pid:
        return pid
    for other in listeners[:index] + listeners[index + 1 :]:
        other.close()  # a socket of a process that has ended must not keep taking connections
    # The child: the default actions until uvicorn installs its own handlers, then serve.
    for signal_number in STOP_SIGNALS:
        signal.signal(signal_number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    status = 1
    try:
        serve(settings, sockets=[listeners[index]])
        status = 0
    except SystemExit as exit_request:  # uvicorn's 3 for a failed start-up
        status = exit_request.code if isinstance(exit_request.code, int) else 1
    finally:
        os._exit(status)  # never the parent's clean-up, in a forked child


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
    settings = read_settings(host=args.host, port=args.port)
    listeners = [listening_socket(args.host, args.port) for _ in range(args.processes)]
    # A stop signal that comes while the processes are forked waits until the parent can pass it on.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    children = {start_process(settings, listeners, index) for index in range(args.processes)}
    for listener in listeners:
        listener.close()
    is_stopping = False

    def stop_children(_signal_number: int = 0, _frame: object = None) -> None:
        nonlocal is_stopping
        is_stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    for signal_number in STOP_SIGNALS:
        signal.signal(signal_number, stop_children)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    failed = False
    while children:
        pid, status = os.wait()
        children.discard(pid)
        if os.waitstatus_to_exitcode(status) not in STOPPED_STATUSES or not is_stopping:
            failed = True  # it ended on its own: the measurement would be of fewer processes
            stop_children()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
