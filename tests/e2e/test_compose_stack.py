"""`docker-compose up` of this checkout -> a healthy, non-root service that reads real digits,
exposes its metrics and drains in-flight requests when `docker stop` sends SIGTERM."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from testkit.shared_data import REPO_ROOT
from tests.e2e.conftest import IMAGE_LABEL, SERVICE

pytestmark = pytest.mark.e2e

# Each in-flight request uploads its body over this long, so that SIGTERM lands mid-request.
SLOW_UPLOAD_SECONDS = 4.0
SLOW_UPLOAD_CHUNKS = 8


def test_compose_v1_reads_every_variant_of_the_compose_files(compose_stack):
    default = compose_stack.compose("config")
    assert f"127.0.0.1:{compose_stack.port}:8000/tcp" in default
    with_profiles = compose_stack.compose("--profile", "monitoring", "--profile", "train", "config")
    assert "prom/prometheus" in with_profiles and "cvl=/data/cvl" in with_profiles
    gpu = compose_stack.compose("-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml", "config")
    assert "driver: nvidia" in gpu and "tensorflow[and-cuda]==2.21.0" in gpu


def test_container_runs_as_non_root_with_a_healthcheck_on_healthz(running_stack):
    container = running_stack.container_id()
    assert running_stack.docker("exec", container, "id", "-u") == "10001"
    config = json.loads(running_stack.docker("inspect", "--format", "{{json .Config}}", container))
    assert any("/healthz" in part for part in config["Healthcheck"]["Test"])
    command = config["Cmd"]
    assert command[:3] == ["python", "-m", "app"]  # the entry point that applies the connection limits
    # The service itself is PID 1 (exec form), so SIGTERM from `docker stop` reaches it.
    pid_1_arguments = running_stack.docker("exec", container, "cat", "/proc/1/cmdline").split("\0")
    assert pid_1_arguments[:3] == ["python", "-m", "app"]


def test_every_stage_of_the_image_carries_the_project_label(running_stack):
    image = running_stack.docker("inspect", "--format", "{{.Image}}", running_stack.container_id())
    labels = json.loads(
        running_stack.docker("image", "inspect", "--format", "{{json .Config.Labels}}", image)
    )
    assert labels[IMAGE_LABEL] == "digitserve"


def test_pruning_removes_superseded_project_images_and_keeps_tagged_ones(compose_stack, tmp_path):
    """Two builds under one tag leave the first untagged: the disk-filling case that pruning ends."""
    tag = f"digitserve-prune-probe:{uuid.uuid4().hex[:8]}"
    image_ids = []
    for generation in ("first", "second"):
        (tmp_path / "Dockerfile").write_text(
            f'FROM python:3.11-slim\nLABEL {IMAGE_LABEL}="prune-probe" probe.generation="{generation}"\n'
        )
        compose_stack.docker("build", "--quiet", "--tag", tag, str(tmp_path), timeout=120)
        image_ids.append(compose_stack.docker("image", "inspect", "--format", "{{.Id}}", tag))
    superseded, current = image_ids
    try:
        # The probe's own label value, so this session's build cache (labelled "digitserve") stays.
        compose_stack.prune_superseded_images(built_before=time.time() + 60, label_value="prune-probe")
        remaining = compose_stack.docker("image", "ls", "--all", "--no-trunc", "--quiet").split()
        assert superseded not in remaining
        assert current in remaining
    finally:
        compose_stack.docker("image", "rm", "--force", tag)


def test_the_image_has_the_digitserve_command(running_stack):
    container = running_stack.container_id()
    assert "predict" in running_stack.docker("exec", container, "digitserve", "--help")
    assert "DIGITSERVE_MODEL_DIR=/opt/digitserve/models/digits" in running_stack.docker(
        "exec", container, "digitserve", "serve", "--print-settings"
    )
    command = json.loads(running_stack.docker("inspect", "--format", "{{json .Config.Cmd}}", container))
    assert command[command.index("--host") + 1] == "0.0.0.0"  # `make serve` keeps to 127.0.0.1; not the image


def test_image_serves_the_model_baked_in_from_models(running_stack):
    baked = running_stack.docker("exec", running_stack.container_id(), "ls", "/opt/digitserve/models/digits")
    shipped = sorted(path.name for path in (REPO_ROOT / "models" / "digits").iterdir() if path.name.isdigit())
    assert sorted(name for name in baked.split() if name.isdigit()) == shipped


def test_predict_reads_real_digits(running_stack, digit_uploads):
    with httpx.Client(base_url=running_stack.base_url, timeout=30) as client:
        for image, label in digit_uploads[:4]:
            response = client.post("/predict", files={"file": ("digit.png", image, "image/png")})
            assert response.status_code == 200, response.text
            assert response.json()["digit"] == label


def test_predict_batch_reads_sixteen_digits_in_order(running_stack, digit_uploads):
    files = [("files", ("digit.png", image, "image/png")) for image, _ in digit_uploads]
    response = httpx.post(f"{running_stack.base_url}/predict/batch", files=files, timeout=30)
    assert response.status_code == 200, response.text
    digits = [prediction["digit"] for prediction in response.json()["predictions"]]
    labels = [label for _, label in digit_uploads]
    assert len(digits) == len(labels)
    assert sum(digit == label for digit, label in zip(digits, labels, strict=True)) >= len(labels) - 1


def test_metrics_count_the_requests_served(running_stack, digit_uploads):
    image, _ = digit_uploads[0]
    with httpx.Client(base_url=running_stack.base_url, timeout=30) as client:
        assert client.post("/predict", files={"file": ("digit.png", image, "image/png")}).status_code == 200
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    predict_counts = [
        value
        for (name, labels), value in samples.items()
        if name == "digitserve_http_request_duration_seconds_count" and ("route", "/predict") in labels
    ]
    assert predict_counts and sum(predict_counts) >= 1
    assert any(name == "digitserve_model_info" for name, _ in samples)


def multipart_body(field_name: str, images: list[bytes], boundary: str) -> bytes:
    parts = [
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field_name}"; filename="digit-{index}.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + b"\r\n"
        for index, image in enumerate(images)
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def trickle(body: bytes, first_chunk_sent: threading.Event) -> Iterator[bytes]:
    """Yields `body` in SLOW_UPLOAD_CHUNKS pieces spread over SLOW_UPLOAD_SECONDS.

    Sets `first_chunk_sent` when asked for the second piece: httpx has then written the headers and
    the first piece to the connection.
    """
    chunk_bytes = -(-len(body) // SLOW_UPLOAD_CHUNKS)
    for start in range(0, len(body), chunk_bytes):
        yield body[start : start + chunk_bytes]
        first_chunk_sent.set()
        time.sleep(SLOW_UPLOAD_SECONDS / SLOW_UPLOAD_CHUNKS)


@dataclass(frozen=True)
class SlowUpload:
    """A multipart POST whose body takes SLOW_UPLOAD_SECONDS to send."""

    path: str
    field_name: str
    images: list[bytes]
    first_chunk_sent: threading.Event = field(default_factory=threading.Event)

    def send(self, base_url: str) -> httpx.Response:
        boundary = uuid.uuid4().hex
        body = multipart_body(self.field_name, self.images, boundary)
        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(body)),
        }
        content = trickle(body, self.first_chunk_sent)
        return httpx.post(f"{base_url}{self.path}", content=content, headers=headers, timeout=60)


def test_sigterm_drains_in_flight_requests(running_stack, digit_uploads):
    images = [image for image, _ in digit_uploads]
    uploads = [SlowUpload("/predict", "file", [images[index]]) for index in range(3)]
    uploads += [SlowUpload("/predict/batch", "files", images[start : start + 4]) for start in (4, 8, 12)]

    with ThreadPoolExecutor(max_workers=len(uploads)) as pool:
        futures = [pool.submit(upload.send, running_stack.base_url) for upload in uploads]
        for upload in uploads:
            assert upload.first_chunk_sent.wait(timeout=30), "an upload did not start"
        # Every request is in flight: connected, headers and first chunk sent, most of its body to come.
        time.sleep(SLOW_UPLOAD_SECONDS / SLOW_UPLOAD_CHUNKS)
        stop_started = time.monotonic()
        running_stack.compose("stop", SERVICE, timeout=120)  # SIGTERM, then the 30 s stop_grace_period
        stop_seconds = time.monotonic() - stop_started
        responses = [future.result() for future in futures]

    for upload, response in zip(uploads, responses, strict=True):
        assert response.status_code == 200, f"{upload.path}: {response.status_code} {response.text}"
        body = response.json()
        predictions = [body] if upload.path == "/predict" else body["predictions"]
        assert len(predictions) == len(upload.images)
        assert all(0 <= prediction["digit"] <= 9 for prediction in predictions)
    # uvicorn exited by itself once the requests were answered: no SIGKILL (137) at the grace period.
    assert running_stack.container_state("{{.State.ExitCode}}") == "0", running_stack.logs()
    assert stop_seconds < 25, f"docker stop took {stop_seconds:.1f} s: the drain did not end"
