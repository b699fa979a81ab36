"""With API keys set, the upload routes need a valid key; probes stay open; keys never reach the logs."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

from testkit.images import encode_png
from tests.integration.conftest import run_service

pytestmark = pytest.mark.integration

RIGHT_KEY = "right-key-0123456789abcdef"
OTHER_KEY = "other-key-fedcba9876543210"
WRONG_KEY = "wrong-key-0011223344556677"


def digit_png() -> bytes:
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 12:16] = 255
    return encode_png(image)


def upload(route: str) -> dict:
    if route.endswith("/batch"):
        return {"files": [("files", ("a.png", digit_png())), ("files", ("b.png", digit_png()))]}
    return {"files": {"file": ("digit.png", digit_png())}}


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"
    assert "X-API-Key" in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.fixture
async def keyed_service(make_settings):
    async with run_service(make_settings(api_keys=f"{RIGHT_KEY},{OTHER_KEY}")) as service:
        yield service


@pytest.mark.parametrize("route", ["/predict", "/predict/batch", "/read", "/read/batch", "/preprocess"])
async def test_upload_routes_refuse_requests_without_a_key(keyed_service, route):
    assert_unauthorized(await keyed_service.client.post(route, **upload(route)))


@pytest.mark.parametrize("route", ["/predict", "/predict/batch", "/read", "/read/batch", "/preprocess"])
async def test_upload_routes_refuse_a_wrong_key_in_either_header(keyed_service, route):
    for headers in ({"X-API-Key": WRONG_KEY}, {"Authorization": f"Bearer {WRONG_KEY}"}):
        assert_unauthorized(await keyed_service.client.post(route, headers=headers, **upload(route)))


@pytest.mark.parametrize("route", ["/predict", "/predict/batch", "/read", "/read/batch", "/preprocess"])
@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": RIGHT_KEY}, {"X-API-Key": OTHER_KEY}, {"Authorization": f"Bearer {RIGHT_KEY}"}],
    ids=["x-api-key", "second-key", "bearer"],
)
async def test_upload_routes_serve_a_valid_key(keyed_service, route, headers):
    response = await keyed_service.client.post(route, headers=headers, **upload(route))
    assert response.status_code == 200, response.text


async def test_a_refused_request_is_counted_and_never_reaches_the_model(keyed_service):
    await keyed_service.client.post("/predict", headers={"X-API-Key": WRONG_KEY}, **upload("/predict"))
    assert keyed_service.sample("digitserve_rejected_requests_total", {"reason": "unauthorized"}) == 1
    assert (
        keyed_service.sample(
            "digitserve_http_requests_total", {"route": "/predict", "method": "POST", "code": "401"}
        )
        == 1
    )
    assert keyed_service.sample("digitserve_batch_size_count") == 0


async def test_probes_page_docs_and_metrics_stay_open_by_default(keyed_service):
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/metrics"):
        response = await keyed_service.client.get(path)
        assert response.status_code == 200, path
    # The web page cannot hold a key (anyone may read its source): it is never behind one.
    assert (await keyed_service.client.get("/")).status_code != 401


async def test_metrics_can_be_restricted_to_key_holders(make_settings):
    settings = make_settings(api_keys=RIGHT_KEY, metrics_require_api_key=True)
    async with run_service(settings) as service:
        refused = await service.client.get("/metrics")
        served = await service.client.get("/metrics", headers={"Authorization": f"Bearer {RIGHT_KEY}"})
        probe = await service.client.get("/readyz")
    assert_unauthorized(refused)
    assert served.status_code == 200 and "digitserve_http_requests_total" in served.text
    assert probe.status_code == 200


async def test_without_keys_the_service_is_open(service):
    response = await service.client.post("/predict", **upload("/predict"))
    assert response.status_code == 200


async def test_openapi_document_declares_the_key_and_the_401(keyed_service):
    document = (await keyed_service.client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["ApiKeyHeader"]["name"] == "X-API-Key"
    predict = document["paths"]["/predict"]["post"]
    assert {"ApiKeyHeader": []} in predict["security"] and "401" in predict["responses"]
    assert "security" not in document["paths"]["/readyz"]["get"]


async def test_keys_never_appear_in_log_lines_even_on_refusals(make_settings, caplog):
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    async with run_service(make_settings(api_keys=RIGHT_KEY, log_level="DEBUG")) as service:
        handler = next(h for h in logging.getLogger("app").handlers if h.get_name() == "digitserve")
        previous_stream = handler.setStream(stream)
        try:
            for headers in (
                {"X-API-Key": WRONG_KEY},
                {"Authorization": f"Bearer {WRONG_KEY}"},
                {},
                {"X-API-Key": RIGHT_KEY},
            ):
                await service.client.post("/predict", headers=headers, **upload("/predict"))
            empty = {"file": ("x", b"")}
            await service.client.post("/predict", headers={"X-API-Key": RIGHT_KEY}, files=empty)
        finally:
            handler.setStream(previous_stream)
    lines = stream.getvalue()
    assert lines.count("request refused") == 4  # 3 without a valid key, 1 empty upload
    records = " ".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    for key in (RIGHT_KEY, WRONG_KEY):
        assert key not in lines and key not in records
