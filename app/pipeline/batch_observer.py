"""Batcher measurements -> wherever they are recorded: the interface the batcher reports through.

The service records them as Prometheus metrics (`app.observability.metrics.Metrics` implements it);
unit tests and scripts record nothing. The batcher never imports the metrics module itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class BatchObserver(Protocol):
    """Receives the batcher's measurements (implemented by `app.observability.metrics.Metrics`)."""

    def observe_batch(self, queue_wait_seconds: Iterable[float], inference_seconds: float) -> None: ...

    def set_queue_depth(self, depth: int) -> None: ...


class NullObserver:
    """A `BatchObserver` that records nothing (unit tests, scripts)."""

    def observe_batch(self, queue_wait_seconds: Iterable[float], inference_seconds: float) -> None:
        """Ignores the measurement."""

    def set_queue_depth(self, depth: int) -> None:
        """Ignores the measurement."""
