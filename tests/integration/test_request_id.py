"""Every response carries `X-Request-ID` (the caller's if safe, else a new one), and so do its log lines."""

from __future__ import annotations

import re

import pytest

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
