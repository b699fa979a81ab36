"""Every Prometheus metric of the service, defined in one place against a per-app registry.

RED for the HTTP layer (requests, errors by code, durations) plus the saturation of the batching
queue, and the process's own health from prometheus_client's collectors (`process_*`: resident
memory, CPU seconds, open file descriptors; `python_gc_*`; `python_info`). Names carry base units
(`_seconds`) and counters end in `_total`; every label is bounded (route templates, methods, status
codes, error codes, digits), and known label sets are created up front so that dashboards see zeros
instead of missing series. No `_created` series: one per counter and histogram child would double
the series for a value Prometheus does not use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from app.pipeline.postprocess import Prediction, UnsureReason
from digits import errors

NAMESPACE = "digitserve"
UNMATCHED_ROUTE = "unmatched"
DIGITS = tuple(str(digit) for digit in range(10))
# Pre-processing is milliseconds for a 28x28 PNG and up to a second for a large photo.
PREPROCESS_BUCKETS_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
QUEUE_WAIT_BUCKETS_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INFERENCE_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Returned confidence: fine steps near 1, where a drift in the inputs first shows (fewer answers at 0.999).
CONFIDENCE_BUCKETS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)
REQUEST_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def error_codes() -> list[str]:
    """Returns the stable code of every domain error, plus the codes of the generic handlers."""
    codes = {"internal_error", "http_error", "bad_request", "not_found", "method_not_allowed"}
    pending: list[type[errors.DigitServeError]] = [errors.DigitServeError]
    while pending:
        error_class = pending.pop()
        codes.add(error_class.code)
        pending.extend(error_class.__subclasses__())
    return sorted(codes)


def batch_size_buckets(batch_max_size: int) -> tuple[float, ...]:
    """Returns the buckets 1, 2, 4 ... batch_max_size: one bucket per size the batcher tends to form."""
    buckets = [1.0]
    while buckets[-1] < batch_max_size:
        buckets.append(buckets[-1] * 2)
    return tuple(buckets)


@dataclass(frozen=True)
class Metrics:
    """The service's metrics, all registered on `registry` (exposed by `GET /metrics`)."""

    registry: CollectorRegistry
    http_requests: Counter
    http_request_duration: Histogram
    rejected_requests: Counter
    preprocess_duration: Histogram
    batch_queue_wait: Histogram
    batch_size: Histogram
    decode_task_uploads: Histogram
    model_inference_duration: Histogram
    batch_queue_depth: Gauge
    predictions: Counter
    prediction_confidence: Histogram
    unsure_predictions: Counter
    model_info: Gauge
    # Label children by label values: `.labels()` takes a lock and builds a key on every call,
    # about 5 us, twice per request. As bounded as the label values.
    _request_children: dict[tuple[str, str, int], tuple[Any, Any]] = field(
        default_factory=dict, repr=False, compare=False
    )
    # The same for every answer's digit and unsure reason (bounded: 10 digits, 3 reasons).
    _answer_children: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def observe_request(self, route: str, method: str, status_code: int, duration_seconds: float) -> None:
        """Counts one answered request and records its duration.

        Args:
            route: the route template ("/predict") or "unmatched".
            method: the HTTP method, or "OTHER".
            status_code: the response's status.
            duration_seconds: time from request start to the last response byte.
        """
        key = (route, method, status_code)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(route=route, method=method, code=str(status_code)),
                self.http_request_duration.labels(route=route, method=method),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(duration_seconds)

    def observe_batch(self, queue_wait_seconds: Iterable[float], inference_seconds: float) -> None:
        """Records one model call: each item's time in the queue, the batch size, the call's duration.

        Args:
            queue_wait_seconds: for each image of the batch, seconds from enqueue to the model call.
            inference_seconds: wall time of the model call.
        """
        waits = list(queue_wait_seconds)
        for wait_seconds in waits:
            self.batch_queue_wait.observe(wait_seconds)
        self.batch_size.observe(len(waits))
        self.model_inference_duration.observe(inference_seconds)

    def observe_prediction(self, prediction: Prediction) -> None:
        """Counts one answer by digit, records its confidence, and counts it by reason when unsure."""
        children = self._answer_children
        if not children:
            children.update({str(digit): self.predictions.labels(digit=str(digit)) for digit in range(10)})
            children.update(
                {reason: self.unsure_predictions.labels(reason=reason.value) for reason in UnsureReason}
            )
        children[str(prediction.digit)].inc()
        self.prediction_confidence.observe(prediction.confidence)
        if prediction.reason is not None:
            children[prediction.reason].inc()

    def set_queue_depth(self, depth: int) -> None:
        """Records the room in use: images waiting for the model plus units held by uploads being decoded."""
        self.batch_queue_depth.set(depth)

    def set_model_info(self, version: str, sha256: str, is_smoke_test: bool = False) -> None:
        """Publishes the served model's identity as `digitserve_model_info{version,sha256,smoke_test} 1`."""
        self.model_info.clear()
        smoke_test = "true" if is_smoke_test else "false"
        self.model_info.labels(version=version, sha256=sha256, smoke_test=smoke_test).set(1)


def _build_http_metrics(registry: CollectorRegistry) -> dict[str, Counter | Histogram]:
    return {
        "http_requests": Counter(
            "http_requests", "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "code"], namespace=NAMESPACE, registry=registry,
        ),
        "http_request_duration": Histogram(
            "http_request_duration_seconds", "Time from request start to the last response byte.",
            ["route", "method"], namespace=NAMESPACE, registry=registry, buckets=REQUEST_BUCKETS_SECONDS,
        ),
        "rejected_requests": Counter(
            "rejected_requests",
            "Requests, batch items and connections answered with an error, by reason: the error's stable "
            "code, as in the JSON body (every 4xx and 5xx answer, 404 not_found and 405 "
            "method_not_allowed included; the HTTP status is http_requests_total's code).",
            ["reason"], namespace=NAMESPACE, registry=registry,
        ),
    }  # fmt: skip


def _build_pipeline_metrics(
    registry: CollectorRegistry, batch_max_size: int, decode_uploads_per_task: int
) -> dict[str, Any]:
    return {
        "preprocess_duration": Histogram(
            "preprocess_duration_seconds", "Decode and pre-processing time of one uploaded image.",
            namespace=NAMESPACE, registry=registry, buckets=PREPROCESS_BUCKETS_SECONDS,
        ),
        "batch_queue_wait": Histogram(
            "batch_queue_wait_seconds", "Time an image waits in the batching queue before its model call.",
            namespace=NAMESPACE, registry=registry, buckets=QUEUE_WAIT_BUCKETS_SECONDS,
        ),
        "batch_size": Histogram(
            "batch_size", "Images per model call.",
            namespace=NAMESPACE, registry=registry, buckets=batch_size_buckets(batch_max_size),
        ),
        "decode_task_uploads": Histogram(
            "decode_task_uploads",
            "Uploads a decode worker got in one task: under load, those waiting for a worker go together.",
            namespace=NAMESPACE, registry=registry, buckets=batch_size_buckets(decode_uploads_per_task),
        ),
        "model_inference_duration": Histogram(
            "model_inference_duration_seconds", "Wall time of one model call (one batch).",
            namespace=NAMESPACE, registry=registry, buckets=INFERENCE_BUCKETS_SECONDS,
        ),
        "batch_queue_depth": Gauge(
            "batch_queue_depth",
            "Room in use in the batching queue: images waiting for the model plus units held by uploads "
            "being decoded (a large image holds several).",
            namespace=NAMESPACE, registry=registry,
        ),
        "predictions": Counter(
            "predictions", "Predictions returned, by predicted digit.",
            ["digit"], namespace=NAMESPACE, registry=registry,
        ),
        "prediction_confidence": Histogram(
            "prediction_confidence_ratio",
            "Calibrated confidence of each answer (single and batch items); a drift in the inputs shows as "
            "a shift towards lower confidence.",
            namespace=NAMESPACE, registry=registry, buckets=CONFIDENCE_BUCKETS,
        ),
        "unsure_predictions": Counter(
            "unsure_predictions",
            "Answers marked unsure, by reason (low_confidence, not_a_digit, several_digits).",
            ["reason"], namespace=NAMESPACE, registry=registry,
        ),
        "model_info": Gauge(
            "model_info",
            "The served model (always 1): its version, the sha256 of saved_model.pb, whether a smoke test.",
            ["version", "sha256", "smoke_test"], namespace=NAMESPACE, registry=registry,
        ),
    }  # fmt: skip


def build_metrics(
    registry: CollectorRegistry,
    batch_max_size: int,
    routes: Sequence[tuple[str, str]] = (),
    decode_uploads_per_task: int = 8,
) -> Metrics:
    """Creates and registers every metric of the service.

    Args:
        registry: a registry owned by one app (tests build one app each, so no global state).
        batch_max_size: the batcher's maximum batch, the last bucket of `digitserve_batch_size`.
        routes: (route template, method) pairs of the app, pre-initialised in the duration histogram.
        decode_uploads_per_task: the most uploads of one decode task, the last bucket of
            `digitserve_decode_task_uploads`.

    Returns:
        The `Metrics` holding every collector.
    """
    # prometheus_client's switch is process-wide; every app of the process wants it off.
    disable_created_metrics()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    metrics = Metrics(
        registry=registry,
        **_build_http_metrics(registry),
        **_build_pipeline_metrics(registry, batch_max_size, decode_uploads_per_task),
    )
    for digit in DIGITS:
        metrics.predictions.labels(digit=digit)
    for code in error_codes():
        metrics.rejected_requests.labels(reason=code)
    for reason in UnsureReason:
        metrics.unsure_predictions.labels(reason=reason.value)
    for route, method in routes:
        metrics.http_request_duration.labels(route=route, method=method)
    return metrics
