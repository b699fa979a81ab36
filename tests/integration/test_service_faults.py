"""Faults against a real uvicorn process on 127.0.0.1: client faults, overload and SIGTERM, each bounded.

Short versions (seconds, not minutes) of the benchmark scenarios `testkit.overload` and
`testkit.shutdown` (which `python -m bench.overload` and `python -m bench.shutdown` run for minutes),
asserting what must hold whatever the machine: which statuses come back, that every 503 says when to
retry, that nothing leaks, that accepted requests complete. The figures (latencies, memory over 5
minutes, exit time) are measured by the scripts and recorded in `bench/RESULTS.md`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from testkit.http_load import build_multipart_request, exchange
from testkit.images import encode_png
from testkit.overload import SMALL_QUEUE_ENVIRONMENT, run_overload
from testkit.server import LOOPBACK_HOST, RunningServer, free_port, running_service
from testkit.shutdown import (
    ACCESS_LOG_ARGUMENTS,
    PRODUCTION_ARGUMENTS,
    count_access_log_answers,
    run_shutdown,
)
from testkit.shutdown import failed_targets as shutdown_failures

pytestmark = pytest.mark.integration

MEBIBYTE_BYTES = 1024 * 1024
ABORTED_UPLOADS = 200
# Each aborted upload sends 256 KiB of a declared 1 MiB body; 200 of them leaking their bodies would
# grow the process by 50 MiB. Allocator noise stays well under the tolerance.
ABORTED_BODY_BYTES = 256 * 1024
RSS_TOLERANCE_BYTES = 20 * MEBIBYTE_BYTES


@pytest.fixture(scope="module")
def start_server(models_dir: Path):
    """Returns a function starting the service on a free loopback port (a context manager)."""

    def start(
        log_path: Path, environment: dict[str, str] | None = None, extra_arguments: tuple[str, ...] = ()
    ):
        environment = {"DIGITSERVE_MODEL_DIR": str(models_dir), **(environment or {})}
        return running_service(free_port(), environment, log_path, extra_arguments)

    return start


@pytest.fixture(scope="module")
def server(start_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("faults") / "service.log") as running:
        yield running


async def trickle_upload(port: int, data: bytes, chunk_count: int, pause_seconds: float) -> tuple[int, float]:
    """Sends one upload in `chunk_count` pieces with pauses; returns its answer's status and time."""
    reader, writer = await asyncio.open_connection(LOOPBACK_HOST, port)
    request = build_multipart_request(LOOPBACK_HOST, "/predict", "file", "digit.png", data)
    head, _, body = request.partition(b"\r\n\r\n")
    writer.write(head + b"\r\n\r\n")
    size = -(-len(body) // chunk_count)
    *pieces, last_piece = [body[start : start + size] for start in range(0, len(body), size)]
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(pause_seconds)
    response = await exchange(reader, writer, last_piece)
    writer.close()
    return response.status_code, time.perf_counter()


async def abort_upload(port: int) -> None:
    """Declares a 1 MiB upload, sends a quarter of it, and closes the connection."""
    _, writer = await asyncio.open_connection(LOOPBACK_HOST, port)
    head = (
        "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=b0undary\r\n"
        f"Content-Length: {MEBIBYTE_BYTES}\r\n\r\n"
        '--b0undary\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'
    ).encode()
    writer.write(head + b"\x89PNG" + bytes(ABORTED_BODY_BYTES))
    await writer.drain()
    writer.close()


async def disconnect_while_waiting(port: int, data: bytes) -> None:
    """Sends a complete upload and closes the connection before the answer."""
    _, writer = await asyncio.open_connection(LOOPBACK_HOST, port)
    writer.write(build_multipart_request(LOOPBACK_HOST, "/predict", "file", "digit.png", data))
    await writer.drain()
    writer.close()


async def client_fault_round(port: int, data: bytes) -> None:
    for start in range(0, ABORTED_UPLOADS, 50):
        await asyncio.gather(*(abort_upload(port) for _ in range(start, start + 50)))
    await asyncio.gather(*(disconnect_while_waiting(port, data) for _ in range(64)))


def wait_for_idle(
    server: RunningServer, open_files: int | None = None, timeout_seconds: float = 10.0
) -> None:
    """Waits until the queue is empty and the process holds at most `open_files` file descriptors."""
    deadline = time.monotonic() + timeout_seconds
    while server.queue_depth() or (open_files is not None and server.open_file_count() > open_files):
        assert time.monotonic() < deadline, (server.queue_depth(), server.open_file_count(), open_files)
        time.sleep(0.1)


def predict(server: RunningServer, image: np.ndarray) -> dict:
    response = httpx.post(
        f"{server.base_url}/predict", files={"file": ("d.png", encode_png(image))}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_slow_uploads_complete_without_holding_up_other_requests(server, mnist_test_samples):
    images, _ = mnist_test_samples
    data = encode_png(images[0])

    async def scenario() -> tuple[list[tuple[int, float]], list[int], float]:
        # 20 pieces 0.1 s apart: each slow upload takes 2 s to arrive.
        slow = [asyncio.ensure_future(trickle_upload(server.port, data, 20, 0.1)) for _ in range(4)]
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            fast = [
                (await client.post("/predict", files={"file": ("d.png", data)})).status_code
                for _ in range(10)
            ]
        fast_done_at = time.perf_counter()
        return await asyncio.gather(*slow), fast, fast_done_at

    slow_answers, fast_statuses, fast_done_at = asyncio.run(scenario())
    assert [status for status, _ in slow_answers] == [200] * 4
    assert fast_statuses == [200] * 10
    assert fast_done_at < min(done_at for _, done_at in slow_answers)


def test_aborted_uploads_and_disconnects_leak_no_slot_memory_or_file(server, mnist_test_samples):
    images, labels = mnist_test_samples
    data = encode_png(images[1])
    asyncio.run(client_fault_round(server.port, data))  # warm-up: allocator pools, thread pool
    wait_for_idle(server)
    rss_before, open_files_before = server.rss_bytes(), server.open_file_count()
    asyncio.run(client_fault_round(server.port, data))
    wait_for_idle(server, open_files=open_files_before)
    rss_after = server.rss_bytes()
    assert rss_after - rss_before < RSS_TOLERANCE_BYTES, (rss_before, rss_after)
    # A leaked slot keeps the queue non-empty for good; an upload still being decoded when the
    # first wait saw an empty queue passes through it in milliseconds.
    wait_for_idle(server)
    assert predict(server, images[0])["digit"] == labels[0]
    metrics = httpx.get(f"{server.base_url}/metrics").text
    assert 'digitserve_http_requests_total{code="500"' not in metrics


def test_overload_sheds_with_retry_after_and_recovers(start_server, tmp_path):
    with start_server(tmp_path / "service.log", SMALL_QUEUE_ENVIRONMENT) as overloaded:
        _, overload, recovery = asyncio.run(run_overload(overloaded, 128, 5.0, 2.0))
        depth_after = overloaded.queue_depth()
    assert overload.status_counts.get(503, 0) > 0 and overload.status_counts.get(200, 0) > 0
    assert set(overload.status_counts) == {200, 503} and overload.transport_errors == 0
    assert overload.refusals_without_retry_after == 0
    assert set(recovery.status_counts) == {200} and recovery.transport_errors == 0
    assert depth_after == 0


def test_sigterm_during_load_completes_accepted_requests_and_refuses_new_ones(
    start_server, tmp_path, mnist_test_samples
):
    images, _ = mnist_test_samples
    log_path = tmp_path / "service.log"

    async def scenario(stopping: RunningServer):
        # A slow upload is still arriving when SIGTERM comes (3 s, SIGTERM after 2 s): accepted, it completes.
        slow = asyncio.ensure_future(trickle_upload(stopping.port, encode_png(images[2]), 20, 0.15))
        report = await run_shutdown(stopping, 16, 2.0)
        return report, await slow

    with start_server(log_path, extra_arguments=(*PRODUCTION_ARGUMENTS, *ACCESS_LOG_ARGUMENTS)) as stopping:
        report, (slow_status, _) = asyncio.run(scenario(stopping))
    report.access_log_answers = count_access_log_answers(log_path) - 1  # the slow upload's answer
    assert slow_status == 200
    assert shutdown_failures(report) == []
    assert report.in_flight_at_sigterm > 0 and sum(report.answered_after_sigterm.values()) > 0


@pytest.mark.parametrize("breakage", ["missing", "corrupt"])
def test_a_missing_or_broken_model_stops_the_process_with_a_clear_message(start_server, tmp_path, breakage):
    model_dir = tmp_path / "models"
    if breakage == "corrupt":
        (model_dir / "1").mkdir(parents=True)
        (model_dir / "1" / "saved_model.pb").write_bytes(b"not a protocol buffer")
    log_path = tmp_path / "service.log"
    # The lifespan fails, uvicorn reports it and exits with status 3, never serving a request.
    with pytest.raises(RuntimeError, match="exited with status 3 before it was ready"):
        with start_server(log_path, {"DIGITSERVE_MODEL_DIR": str(model_dir)}):
            pass
    log = log_path.read_text()
    reason = "does not exist" if breakage == "missing" else "cannot load the SavedModel"
    # One line names the folder and the reason; the traceback is logged only at DEBUG.
    assert "cannot start:" in log and str(model_dir) in log and reason in log
    assert "Traceback" not in log
