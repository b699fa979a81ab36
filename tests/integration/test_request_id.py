"""Every response carries `X-Request-ID` (the caller's if safe, else a new one), and so do its log lines:
the application's and its access line, in one format (text or JSON) with uvicorn's own lines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.observability.access_log import enable_access_log
from app.observability.logging import configure_logging
from testkit.server import free_port, running_service
from tests.integration.conftest import run_service, service_log_lines

pytestmark = pytest.mark.integration

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("incoming", ["0af7651916cd43dd8448eb211c80319c", "trace-42.b:7", "a" * 128])
async def test_a_safe_incoming_request_id_is_echoed(service, incoming):
    response = await service.client.get("/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming


@pytest.mark.parametrize(
    "incoming", ["", "a" * 129, "has space", 'quote"d', "line\tbreak", "key=value", "é"], ids=repr
)
async def test_an_unsafe_incoming_request_id_is_replaced(service, incoming):
    response = await service.client.get("/healthz", headers=[(b"X-Request-ID", incoming.encode("utf-8"))])
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


async def test_every_response_gets_a_fresh_id_errors_included(service):
    responses = [
        await service.client.get("/readyz"),
        await service.client.get("/no-such-route"),
        await service.client.post("/predict", files={"file": ("x.png", b"")}),
        await service.client.post("/predict", content=b"{}", headers={"content-type": "application/json"}),
    ]
    assert [response.status_code for response in responses] == [200, 404, 400, 422]
    ids = [response.headers["x-request-id"] for response in responses]
    assert all(GENERATED_ID.fullmatch(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


async def test_early_refusals_carry_the_id(make_settings):
    async with run_service(make_settings(upload_max_bytes=1000, api_keys="k" * 16)) as service:
        unauthorized = await service.client.post("/predict", headers={"X-Request-ID": "req-401"})
        too_large = await service.client.post(
            "/predict",
            headers={"X-Request-ID": "req-413", "X-API-Key": "k" * 16},
            files={"file": ("big.png", bytes(5000))},
        )
    assert unauthorized.status_code == 401 and unauthorized.headers["x-request-id"] == "req-401"
    assert too_large.status_code == 413 and too_large.headers["x-request-id"] == "req-413"


async def test_log_lines_of_a_request_carry_its_id(service):
    with service_log_lines() as stream:
        given = await service.client.post(
            "/predict", headers={"X-Request-ID": "client-chosen-id"}, files={"file": ("x.png", b"")}
        )
        generated = await service.client.post("/preprocess", files={"file": ("x.txt", b"seven\n")})
    refused = [line for line in stream.getvalue().splitlines() if "request refused" in line]
    assert given.status_code == 400 and generated.status_code == 415
    assert len(refused) == 2
    assert "code=empty_file" in refused[0] and "request_id=client-chosen-id" in refused[0]
    generated_id = generated.headers["x-request-id"]
    assert "code=unsupported_image_type" in refused[1] and f"request_id={generated_id}" in refused[1]


async def test_lines_logged_outside_requests_have_no_id(make_settings):
    with service_log_lines() as stream:
        async with run_service(make_settings()):
            pass
    lines = stream.getvalue().splitlines()
    assert any(" ready " in f"{line} " for line in lines)
    assert not any("request_id=" in line for line in lines)


@contextmanager
def access_lines_in(log_format: str) -> Iterator[list[str]]:
    """The service's log lines (access lines on) in `log_format`, collected into the yielded list."""
    enable_access_log(True)
    configure_logging("INFO", log_format)
    lines: list[str] = []
    try:
        with service_log_lines() as stream:
            yield lines
            lines.extend(stream.getvalue().splitlines())
    finally:
        configure_logging("INFO", "text")


def fields_of(text_line: str) -> dict[str, str]:
    """The key=value fields of a text line whose values need no quoting."""
    return dict(pair.split("=", 1) for pair in text_line.split() if "=" in pair)


async def test_a_text_access_line_names_the_request_id_method_path_status_duration_and_bytes(service):
    with access_lines_in("text") as lines:
        response = await service.client.post(
            "/predict", headers={"X-Request-ID": "access-1"}, files={"file": ("x.png", b"")}
        )
    [access] = [line for line in lines if " INFO app.access request " in line]
    fields = fields_of(access)
    assert response.status_code == 400
    assert {key: fields[key] for key in ("request_id", "method", "path", "status")} == {
        "request_id": "access-1",
        "method": "POST",
        "path": "/predict",
        "status": "400",
    }
    assert int(fields["response_bytes"]) == len(response.content) > 0
    assert float(fields["duration_ms"]) > 0
    # The application's line of the same request: the same format, the same ID.
    [refused] = [line for line in lines if "request refused" in line]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO app\.api\.", refused)
    assert fields_of(refused)["request_id"] == "access-1"


async def test_a_json_access_line_and_the_application_line_are_both_json_with_the_request_id(service):
    with access_lines_in("json") as lines:
        response = await service.client.post("/preprocess", files={"file": ("x.txt", b"seven\n")})
        not_found = await service.client.get("/no-such-route")
    documents = [json.loads(line) for line in lines]
    request_id = response.headers["x-request-id"]
    mine = [document for document in documents if document.get("request_id") == request_id]
    [refused] = [document for document in mine if document["message"].startswith("request refused")]
    [access] = [document for document in mine if document["logger"] == "app.access"]
    assert refused["code"] == "unsupported_image_type" and refused["level"] == "INFO"
    assert (access["method"], access["path"], access["status"]) == ("POST", "/preprocess", 415)
    assert access["response_bytes"] == len(response.content) and access["duration_ms"] > 0
    assert {"time", "level", "logger", "message"} <= set(access) & set(refused)
    [missing] = [document for document in documents if document.get("path") == "/no-such-route"]
    assert missing["status"] == not_found.status_code == 404
    assert missing["request_id"] == not_found.headers["x-request-id"]


async def test_no_access_line_when_turned_off(service):
    with access_lines_in("text") as lines:
        enable_access_log(False)
        try:
            await service.client.get("/healthz")
        finally:
            enable_access_log(True)
    assert not [line for line in lines if "app.access" in line]


def test_a_real_server_logs_every_line_as_json_and_tensorflow_s_banner_once(models_dir: Path, tmp_path):
    """`python -m app` end to end: uvicorn's lines, TensorFlow's start-up notices, the app's lines and
    the access lines, all one JSON object a line; the oneDNN notice, printed twice by TensorFlow, once."""
    log_path = tmp_path / "service.log"
    environment = {"DIGITSERVE_MODEL_DIR": str(models_dir), "DIGITSERVE_LOG_FORMAT": "json"}
    arguments = ("--log-level", "info", "--access-log")
    with running_service(free_port(), environment, log_path, arguments) as server:
        response = httpx.get(f"{server.base_url}/healthz", headers={"X-Request-ID": "real-1"}, timeout=10)
    assert response.status_code == 200
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    documents = [json.loads(line) for line in lines]  # any line in another format fails here
    loggers = {document["logger"] for document in documents}
    assert {"uvicorn.error", "app.main", "app.access", "app.native"} <= loggers
    assert sum("oneDNN custom operations" in line for line in lines) == 1
    [access] = [document for document in documents if document.get("request_id") == "real-1"]
    assert (access["method"], access["path"], access["status"]) == ("GET", "/healthz", 200)
    assert access["response_bytes"] == len(response.content)
