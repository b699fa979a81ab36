"""GET /metrics exposes every documented metric; the OpenAPI document lists the routes and schemas."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from testkit.images import encode_png

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"

DOCUMENTED_METRICS = (
    "digitserve_http_requests_total",
    "digitserve_http_request_duration_seconds",
    "digitserve_rejected_requests_total",
    "digitserve_preprocess_duration_seconds",
    "digitserve_batch_queue_wait_seconds",
    "digitserve_batch_size",
    "digitserve_decode_task_uploads",
    "digitserve_model_inference_duration_seconds",
    "digitserve_batch_queue_depth",
    "digitserve_predictions_total",
    "digitserve_prediction_confidence_ratio",
    "digitserve_unsure_predictions_total",
    "digitserve_model_info",
    # The process's own, from prometheus_client's collectors.
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "python_gc_objects_collected_total",
    "python_gc_collections_total",
    "python_info",
)

OPENAPI_SNAPSHOT = {
    "paths": {
        "/predict": ["post"],
        "/predict/batch": ["post"],
        "/read": ["post"],
        "/read/batch": ["post"],
        "/preprocess": ["post"],
        "/healthz": ["get"],
        "/readyz": ["get"],
        "/metrics": ["get"],
    },
    "schemas": [
        "AlternativeResponse",
        "BatchItemErrorResponse",
        "BatchPredictionItemResponse",
        "BatchPredictionResponse",
        "BatchReadItemResponse",
        "BatchReadResponse",
        "Body_predict_files_predict_batch_post",
        "Body_predict_predict_post",
        "Body_preprocess_preprocess_post",
        "Body_read_files_read_batch_post",
        "Body_read_read_post",
        "BoxResponse",
        "ErrorResponse",
        "HealthResponse",
        "NumberUnsureReason",
        "PredictionResponse",
        "ReadDigitResponse",
        "ReadResponse",
        "ReadinessResponse",
        "UnsureReason",
    ],
}


async def test_metrics_count_requests_stages_and_predictions(service, mnist_test_samples):
    images, labels = mnist_test_samples
    for image in images[:3]:
        response = await service.client.post("/predict", files={"file": ("d.png", encode_png(image))})
        assert response.status_code == 200
    await service.client.post(
        "/predict", files={"file": ("blank.png", encode_png(np.zeros((9, 9), np.uint8)))}
    )
    exposition = (await service.client.get("/metrics")).text

    for name in DOCUMENTED_METRICS:
        assert f"# HELP {name} " in exposition, name
    route = {"route": "/predict", "method": "POST"}
    assert service.sample("digitserve_http_requests_total", {**route, "code": "200"}) == 3
    assert service.sample("digitserve_http_requests_total", {**route, "code": "422"}) == 1
    assert service.sample("digitserve_http_request_duration_seconds_count", route) == 4
    assert service.sample("digitserve_rejected_requests_total", {"reason": "no_digit_found"}) == 1
    assert service.sample("digitserve_preprocess_duration_seconds_count") == 4
    assert service.sample("digitserve_decode_task_uploads_sum") == 4
    assert service.sample("digitserve_batch_queue_wait_seconds_count") == 3
    assert service.sample("digitserve_model_inference_duration_seconds_count") >= 1
    predicted = sum(service.sample("digitserve_predictions_total", {"digit": str(d)}) for d in range(10))
    assert predicted == 3
    assert service.sample("digitserve_prediction_confidence_ratio_count") == 3
    unsure = sum(
        service.sample("digitserve_unsure_predictions_total", {"reason": reason})
        for reason in ("low_confidence", "not_a_digit", "several_digits")
    )
    assert unsure == service.sample("digitserve_prediction_confidence_ratio_bucket", {"le": "0.9"}) <= 3
    assert service.sample("digitserve_batch_queue_depth") == 0


async def test_metrics_label_unknown_paths_with_one_fixed_route(service):
    for path in ("/admin", "/wp-login.php", "/predict/../etc/passwd"):
        await service.client.get(path)
    exposition = (await service.client.get("/metrics")).text
    assert "wp-login" not in exposition and "/admin" not in exposition
    assert (
        service.sample(
            "digitserve_http_requests_total", {"route": "unmatched", "method": "GET", "code": "404"}
        )
        >= 2
    )


def metric_names_listed_in_readme() -> set[str]:
    """The metric names written in the README's "Metrics" section."""
    section = README.read_text().split("\n### Metrics\n", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"`((?:digitserve|process|python)_[a-z_]+)", section))


async def test_every_exposed_metric_is_listed_in_the_readme_and_no_created_series(service):
    exposition = (await service.client.get("/metrics")).text
    exposed = set(re.findall(r"^# TYPE (\S+) ", exposition, flags=re.MULTILINE))
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"} <= exposed
    assert {name for name in exposed if name.startswith("python_gc_")}
    assert service.sample("process_resident_memory_bytes") > 0 and service.sample("process_open_fds") > 0
    assert "_created" not in exposition
    assert exposed == metric_names_listed_in_readme()


async def test_rejections_are_counted_by_reason_the_error_code_404_and_405_included(service):
    not_found = await service.client.get("/no-such-route")
    not_allowed = await service.client.delete("/predict")
    assert (not_found.json()["code"], not_allowed.json()["code"]) == ("not_found", "method_not_allowed")
    assert service.sample("digitserve_rejected_requests_total", {"reason": "not_found"}) == 1
    assert service.sample("digitserve_rejected_requests_total", {"reason": "method_not_allowed"}) == 1
    exposition = (await service.client.get("/metrics")).text
    [help_line] = [line for line in exposition.splitlines() if line.startswith("# HELP digitserve_rejected")]
    assert "by reason: the error's stable code" in help_line
    labels = re.findall(r"^digitserve_rejected_requests_total\{(\w+)=", exposition, flags=re.MULTILINE)
    assert labels and set(labels) == {"reason"}


async def test_batch_size_buckets_are_powers_of_two_up_to_the_max(service):
    exposition = (await service.client.get("/metrics")).text
    buckets = [
        line.split('le="')[1].split('"')[0] for line in exposition.splitlines() if "batch_size_bucket" in line
    ]
    assert buckets == ["1.0", "2.0", "4.0", "8.0", "16.0", "32.0", "+Inf"]


async def test_openapi_document_matches_the_snapshot(service):
    document = (await service.client.get("/openapi.json")).json()
    paths = {path: sorted(operations) for path, operations in document["paths"].items()}
    assert paths == OPENAPI_SNAPSHOT["paths"]
    assert sorted(document["components"]["schemas"]) == OPENAPI_SNAPSHOT["schemas"]


async def test_openapi_documents_errors_and_examples(service):
    document = (await service.client.get("/openapi.json")).json()
    predict = document["paths"]["/predict"]["post"]
    assert {"200", "400", "413", "415", "422", "500", "503", "504"} <= set(predict["responses"])
    assert "queue_full" in predict["responses"]["503"]["description"]
    batch = document["paths"]["/predict/batch"]["post"]
    assert "too_many_files" in batch["responses"]["413"]["description"]
    assert "image/png" in document["paths"]["/preprocess"]["post"]["responses"]["200"]["content"]
    example = document["components"]["schemas"]["PredictionResponse"]["examples"][0]
    assert set(example) == set(document["components"]["schemas"]["PredictionResponse"]["properties"])
