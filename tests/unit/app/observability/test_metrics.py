"""build_metrics defines every metric on the app's own registry, with bounded, pre-initialised labels."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from app.observability.metrics import batch_size_buckets, build_metrics, error_codes
from digits import errors

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("batch_max_size", "buckets"), [(1, (1.0,)), (2, (1.0, 2.0)), (32, (1.0, 2.0, 4.0, 8.0, 16.0, 32.0))]
)
def test_batch_size_buckets_double_up_to_the_max(batch_max_size, buckets):
    assert batch_size_buckets(batch_max_size) == buckets


def test_error_codes_cover_every_domain_error():
    codes = error_codes()
    assert {"no_digit_found", "queue_full", "payload_too_large", "model_error", "internal_error"} <= set(
        codes
    )
    assert errors.TooManyFilesError.code in codes and len(codes) == len(set(codes))


def test_two_apps_have_independent_registries():
    first = build_metrics(CollectorRegistry(), batch_max_size=4)
    second = build_metrics(CollectorRegistry(), batch_max_size=4)
    first.predictions.labels(digit="3").inc()
    assert first.registry.get_sample_value("digitserve_predictions_total", {"digit": "3"}) == 1
    assert second.registry.get_sample_value("digitserve_predictions_total", {"digit": "3"}) == 0


def test_label_sets_exist_before_the_first_event():
    metrics = build_metrics(CollectorRegistry(), batch_max_size=4, routes=[("/predict", "POST")])
    sample = metrics.registry.get_sample_value
    assert all(sample("digitserve_predictions_total", {"digit": str(digit)}) == 0 for digit in range(10))
    assert sample("digitserve_rejected_requests_total", {"reason": "queue_full"}) == 0
    assert (
        sample("digitserve_http_request_duration_seconds_count", {"route": "/predict", "method": "POST"}) == 0
    )


def test_batch_observation_records_waits_size_and_duration():
    metrics = build_metrics(CollectorRegistry(), batch_max_size=8)
    metrics.observe_batch([0.001, 0.002, 0.003], inference_seconds=0.01)
    sample = metrics.registry.get_sample_value
    assert sample("digitserve_batch_size_sum") == 3 and sample("digitserve_batch_size_count") == 1
    assert sample("digitserve_batch_queue_wait_seconds_count") == 3
    assert sample("digitserve_model_inference_duration_seconds_sum") == pytest.approx(0.01)


def test_request_observations_count_each_label_set_separately():
    metrics = build_metrics(CollectorRegistry(), batch_max_size=8)
    metrics.observe_request("/predict", "POST", 200, 0.02)
    metrics.observe_request("/predict", "POST", 200, 0.04)
    metrics.observe_request("/predict", "POST", 503, 0.001)
    sample = metrics.registry.get_sample_value
    ok, refused = ({"route": "/predict", "method": "POST", "code": code} for code in ("200", "503"))
    assert sample("digitserve_http_requests_total", ok) == 2
    assert sample("digitserve_http_requests_total", refused) == 1
    durations = {"route": "/predict", "method": "POST"}
    assert sample("digitserve_http_request_duration_seconds_count", durations) == 3
    assert sample("digitserve_http_request_duration_seconds_sum", durations) == pytest.approx(0.061)


def test_model_info_holds_exactly_the_served_model():
    metrics = build_metrics(CollectorRegistry(), batch_max_size=1)
    metrics.set_model_info("1", "a" * 64)
    metrics.set_model_info("2", "b" * 64)
    exposition = generate_latest(metrics.registry).decode()
    assert 'digitserve_model_info{sha256="' + "b" * 64 + '",smoke_test="false",version="2"} 1.0' in exposition
    assert 'version="1"' not in exposition


def test_the_registry_holds_the_process_and_python_collectors():
    registry = build_metrics(CollectorRegistry(), batch_max_size=4).registry
    names = {metric.name for metric in registry.collect()}
    assert {"process_resident_memory_bytes", "process_cpu_seconds", "process_open_fds"} <= names
    assert {"python_gc_objects_collected", "python_gc_collections", "python_info"} <= names
    assert registry.get_sample_value("process_resident_memory_bytes") > 0
    assert registry.get_sample_value("python_gc_collections_total", {"generation": "0"}) >= 0


def test_no_created_series_are_exposed():
    metrics = build_metrics(CollectorRegistry(), batch_max_size=4, routes=[("/predict", "POST")])
    metrics.observe_request("/predict", "POST", 200, 0.01)
    exposition = generate_latest(metrics.registry).decode()
    assert "digitserve_http_requests_total{" in exposition
    assert "_created" not in exposition


def test_the_rejection_counter_is_labelled_by_reason_and_says_the_reason_is_the_error_code():
    metrics = build_metrics(CollectorRegistry(), batch_max_size=4)
    [family] = [
        family for family in metrics.registry.collect() if family.name == "digitserve_rejected_requests"
    ]
    assert {tuple(sample.labels) for sample in family.samples} == {("reason",)}
    assert {sample.labels["reason"] for sample in family.samples} == set(error_codes())
    assert {"not_found", "method_not_allowed"} <= set(error_codes())
    assert "by reason: the error's stable code" in family.documentation
    assert "404 not_found and 405 method_not_allowed included" in family.documentation
