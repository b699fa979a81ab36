"""The model alone timed per batch size -> CPU per image; with the service's costs -> the batching ceiling.

Loads the SavedModel the way the service does (`DigitModel.load`, TensorFlow thread pools from the
service's settings) and times `predict_batch` on random images at batch 1 and at larger batches,
wall and process CPU time per image. On a CPU-bound machine, batching can only save what the model
saves per image: if everything outside the model cost nothing, the service's throughput with
batching on could exceed batching off by at most cpu_per_image(1) / cpu_per_image(max batch).
`batching_ceilings` adds what the benchmark measured outside the model (`python -m bench.bench_predict`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from app.settings import Settings

WARM_UP_CALLS = 5
IMAGES_PER_SIZE = 4096
MIN_CALLS = 40
# The largest batch the "on" service forms: the default DIGITSERVE_BATCH_MAX_SIZE.
BATCH_ON_MAX_SIZE = Settings.model_fields["batch_max_size"].default
# The benchmark's level `POST /preprocess` on the "on" service: a request's fixed cost (HTTP, upload,
# decode, pre-process, response) without the model, for the ceiling of the on/off ratio.
NO_MODEL_MODE = "no-model"


def time_batch_size(model, images: np.ndarray) -> dict:
    """Times repeated calls on one batch; returns wall and CPU milliseconds per image."""
    batch_size = len(images)
    for _ in range(WARM_UP_CALLS):
        model.predict_batch(images)
    calls = max(MIN_CALLS, IMAGES_PER_SIZE // batch_size)
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(calls):
        model.predict_batch(images)
    wall_seconds, cpu_seconds = time.perf_counter() - wall_start, time.process_time() - cpu_start
    images_run = calls * batch_size
    return {
        "batch_size": batch_size,
        "calls": calls,
        "wall_ms_per_call": round(wall_seconds * 1000 / calls, 3),
        "wall_ms_per_image": round(wall_seconds * 1000 / images_run, 4),
        "cpu_ms_per_image": round(cpu_seconds * 1000 / images_run, 4),
    }


def measure(model_dir: Path, batch_sizes: list[int]) -> dict:
    """Loads the model with the service's thread settings and times each batch size.

    Returns:
        The model version, the TensorFlow thread-pool sizes, and one row per batch size (as
        `time_batch_size`, plus "cpu_saving_vs_first": the first size's CPU per image over this one's).
    """
    # Imported here, not at the top: the benchmark's load client imports this module for the ceiling
    # only, and its process should stay free of TensorFlow.
    from digits.contract import IMAGE_SHAPE
    from digits.model import DigitModel, configure_thread_pools

    settings = Settings(model_dir=model_dir)
    configure_thread_pools(settings.tf_intra_op_threads, settings.tf_inter_op_threads)
    model = DigitModel.load(settings.model_dir, settings.model_version)
    rng = np.random.default_rng(0)
    batches = [rng.random((size, *IMAGE_SHAPE), dtype=np.float32) for size in batch_sizes]
    rows = [time_batch_size(model, images) for images in batches]
    single = rows[0]["cpu_ms_per_image"]
    for row in rows:
        row["cpu_saving_vs_first"] = round(single / row["cpu_ms_per_image"], 2)
    return {
        "model_version": model.version,
        "tf_intra_op_threads": settings.tf_intra_op_threads,
        "tf_inter_op_threads": settings.tf_inter_op_threads,
        "rows": rows,
    }


def batching_ceilings(model_alone: dict, rows: list[dict]) -> dict:
    """Upper bounds of the on/off throughput ratio, per payload and concurrency, from measured costs.

    A request with batching on costs at least its fixed CPU (HTTP, upload parsing, decode,
    pre-processing, response: the no-model level's CPU per request) plus its share of a full batch
    of the model alone. Even with every core busy and nothing else, the "on" service cannot serve
    more than cores / (fixed + model share) requests per second; divided by the measured "off"
    throughput, that bounds the ratio. The load client's own CPU is left out: the bound is generous.

    A second, measured bound: `/predict` does everything `/preprocess` does, so with batching on it
    cannot serve more requests per second than the no-model level did.

    Returns:
        Per "payload@cN": the no-model level's req/s and its ratio to "off", the fixed CPU per
        request, the model's CPU per image at batch 1 and at the largest batch, the highest possible
        "on" req/s, the measured "off" req/s and their ratio.
    """
    model_ms = {row["batch_size"]: row["cpu_ms_per_image"] for row in model_alone["rows"]}
    by_key = {(row["payload"], row["concurrency"], row["mode"]): row for row in rows}
    ceilings = {}
    for payload, concurrency, mode in by_key:
        if mode != NO_MODEL_MODE:
            continue
        fixed_ms = by_key[payload, concurrency, mode]["server_cpu_ms_per_request"]
        best_on_per_second = (os.cpu_count() or 1) * 1000 / (fixed_ms + model_ms[BATCH_ON_MAX_SIZE])
        off_per_second = by_key[payload, concurrency, "off"]["requests_per_second"]
        no_model_per_second = by_key[payload, concurrency, mode]["requests_per_second"]
        ceilings[f"{payload}@c{concurrency}"] = {
            # /predict does all that /preprocess does and more: it cannot serve more requests/s.
            "no_model_requests_per_second": no_model_per_second,
            "ratio_ceiling_no_model": round(no_model_per_second / off_per_second, 2),
            "fixed_cpu_ms_per_request": fixed_ms,
            "model_cpu_ms_per_image_batch_1": model_ms[1],
            f"model_cpu_ms_per_image_batch_{BATCH_ON_MAX_SIZE}": model_ms[BATCH_ON_MAX_SIZE],
            "highest_on_requests_per_second": round(best_on_per_second, 1),
            "measured_off_requests_per_second": off_per_second,
            "ratio_ceiling": round(best_on_per_second / off_per_second, 2),
        }
    return ceilings
