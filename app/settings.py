"""Environment variables (DIGITSERVE_*) -> one typed, validated `Settings` object.

Every knob of the service lives here, with its unit in its name and its bounds in its type, so that a
wrong value stops the process at start-up with a message naming the variable, never at the first
request. `app.main.create_app` builds it once (tests pass their own); nothing else reads `os.environ`.
The start-up command (`app.__main__`) words what it says of them here: a refused value, a misspelt
variable, the effective settings (API keys never shown).
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MEBIBYTE_BYTES = 1024 * 1024
# Long enough that guessing is hopeless (16 random characters of a 64-letter alphabet: 96 bits).
API_KEY_MIN_CHARACTERS = 16
# A refused value is shown in the start-up message up to this length.
SHOWN_VALUE_MAX_CHARACTERS = 80
# Settings whose values no message or listing ever shows.
SECRET_FIELDS = frozenset({"api_keys"})
# DIGITSERVE_* variables that are not the service's settings: docker-compose.yml's host side (the
# published address and port, the host folders, the training container's user) and the client's key.
OTHER_KNOWN_VARIABLES = frozenset(
    f"DIGITSERVE_{name}"
    for name in ("HOST_ADDRESS", "HOST_PORT", "HOST_MODELS_DIR", "HOST_RUNS_DIR", "DATA_DIR", "TRAIN_USER")
) | {"DIGITSERVE_CLIENT_API_KEY"}


class Settings(BaseSettings):
    """The service's configuration, read from `DIGITSERVE_<FIELD>` environment variables.

    Attributes:
        model_dir: folder of integer-numbered model versions, TF-Serving style (`<model_dir>/1/`), or
            one version folder itself.
        model_version: the version folder to serve; None serves the highest integer version found.
        allow_smoke_test_model: serve a model whose card marks it a smoke test (trained with
            `--quick`); refused at start-up otherwise.
        batch_max_size: most images in one model call (a power of 2; 1 turns batching off).
        batch_max_wait_ms: longest time the first queued image waits for others to join its batch
            (it does not wait when no other image is queued or being decoded).
        queue_max_size: most images waiting for the model or being decoded for it (or for
            `/preprocess`); beyond it requests get 503 + Retry-After. A number for `/read` takes
            about 12 (its cut-outs), so 1024 admits 85 numbers, or 1024 single digits, at once.
        queue_retry_after_seconds: the Retry-After value sent with a queue-full 503.
        request_timeout_seconds: deadline of one request, decode to response; past it, 504.
        upload_max_bytes: largest request body accepted (413 above, refused early by Content-Length).
        image_max_pixels: largest decoded image (width x height); guards against decompression bombs.
        image_max_decoded_bytes: most bytes one upload may take once decoded, counting its bytes per
            pixel (16-bit, RGBA, float...) and the copies made while converting it to grayscale.
        image_max_aspect_ratio: longest side over shortest side; a 1 x 40,000,000 strip is no digit.
        jpeg_max_scans: most scans a (progressive) JPEG may hold; each scan is a pass over the image.
        batch_max_files: most files in one `POST /predict/batch` or `/read/batch` request (413 above).
        read_max_digits: most digits `POST /read` reads in one number (422 `too_many_digits` above).
        tf_intra_op_threads: threads TensorFlow splits one operation between; 0 lets TensorFlow
            choose (`TF_NUM_INTRAOP_THREADS`, else one per core of the host, not of the container).
        tf_inter_op_threads: threads TensorFlow runs independent operations on; 0 lets it choose.
        opencv_threads: threads OpenCV splits one pre-processing operation between; 0 lets OpenCV
            choose (one per core).
        decode_workers: worker processes that decode and pre-process uploads, one upload each at a
            time; the model has a thread of its own in the service's process.
        decode_timeout_seconds: longest time one upload may take to decode and pre-process; past it
            its worker is killed and the upload answered 413 `image_too_complex`.
        decode_uploads_per_task: most small uploads (decoded in under `image_cost_unit_bytes`) waiting
            for a worker that go to it together, as one task (1: each upload alone).
        decode_worker_memory_max_bytes: address space of each decode worker; a decode that would need
            more fails (413) inside its worker instead of taking the machine's memory.
        image_cost_unit_bytes: an upload being decoded holds one unit of queue room per this many
            bytes of decoding memory (at least one): large images count as many small ones.
        log_level: level of the service's logs.
        log_format: `text` (`time level logger message key=value ...`) or `json` (one object a line).
        host: interface uvicorn binds to (used by `python -m app`, the Makefile and the container).
        port: TCP port uvicorn listens on.
        api_keys: keys accepted on the prediction endpoints (`X-API-Key` or `Authorization: Bearer`);
            comma-separated in the environment; empty turns authentication off.
        metrics_require_api_key: `GET /metrics` asks for an API key too (needs `api_keys`).
        http_max_header_bytes: largest request head (request line and headers); 431 above.
        http_header_timeout_seconds: longest time a connection may take to send a request head; then
            it is closed (slow or idle clients cannot hold connections open).
        http_keep_alive_timeout_seconds: how long an idle keep-alive connection is kept between requests.
        http_max_connections: most connections and requests at once; beyond it, 503.
        upload_idle_timeout_seconds: longest pause while a request body is arriving; then 408.
        upload_timeout_seconds: longest time to receive a whole request body; then 408.
        upload_spool_max_bytes: most request-body bytes held (in memory or temp files) by all the
            requests being received at once; beyond it, 503 + Retry-After.
        min_confidence: below this calibrated confidence an answer is "unsure" (`low_confidence`);
            None: the threshold the model card chose on validation data, else 0.9 for a card without.
        readiness_stall_seconds: `/readyz` answers 503 when images have waited this long without any
            model call finishing (a stalled replica leaves the load balancer's rotation).
    """

    # hide_input_in_errors: a refused value is never echoed, since it may be an API key.
    model_config = SettingsConfigDict(
        env_prefix="DIGITSERVE_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    model_dir: Path = Path("models/digits")
    model_version: str | None = Field(default=None, pattern=r"^[0-9]+$")
    # A smoke-test model (`training.run --quick`: a few hundred images, one epoch) reads digits badly;
    # only tests of the service itself should serve one.
    allow_smoke_test_model: bool = False
    # The trade-off between answers sent to a person and wrong answers accepted: README "Unsure answers".
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    batch_max_size: int = Field(default=32, ge=1, le=1024)
    batch_max_wait_ms: float = Field(default=5.0, ge=0.0, le=1000.0)
    queue_max_size: int = Field(default=1024, ge=1, le=65536)
    queue_retry_after_seconds: int = Field(default=1, ge=1, le=3600)
    request_timeout_seconds: float = Field(default=10.0, gt=0.0, le=600.0)
    upload_max_bytes: int = Field(default=10 * MEBIBYTE_BYTES, gt=0)
    image_max_pixels: int = Field(default=40_000_000, gt=0)
    batch_max_files: int = Field(default=64, ge=1, le=1024)
    read_max_digits: int = Field(default=20, ge=1, le=100)
    # One thread each: the model has one batch in flight and the event loop keeps another core busy
    # with HTTP and decoding, so a second intra-op thread mostly waits for it. Measured on 2 cores:
    # a batch of 1 costs 0.9 ms of CPU with 1 thread against 1.5 ms with 2, a batch of 32 13 ms
    # against 14 ms (bench/RESULTS.md).
    tf_intra_op_threads: int = Field(default=1, ge=0, le=256)
    tf_inter_op_threads: int = Field(default=1, ge=0, le=256)
    # Uploads are already decoded in parallel, one per worker thread, and are small: OpenCV's own
    # pool only adds a worker that spins between tasks (about a fifth of a core under load, measured
    # with gdb and /proc), while pre-processing is no faster with it (bench/RESULTS.md).
    opencv_threads: int = Field(default=1, ge=0, le=256)
    # About one per core: each worker decodes one upload at a time, on a core of its own.
    decode_workers: int = Field(default=2, ge=1, le=256)
    # A 12-megapixel phone JPEG decodes and pre-processes in about 0.2 s here, a 40-megapixel PNG in
    # about 1 s: 3 s leaves room for a loaded machine and still answers a hostile upload quickly.
    decode_timeout_seconds: float = Field(default=3.0, gt=0.0, le=600.0)
    # A hand-off to a worker costs ~0.3 ms of CPU on both sides, about as much as preparing a 28x28
    # PNG: under load, uploads go to a worker in groups (bench/RESULTS.md: -16 % CPU a PNG request).
    # Eight PNGs are ~6 ms of work: no wait beside a request's deadline.
    decode_uploads_per_task: int = Field(default=8, ge=1, le=256)
    # A worker starts at ~460 MiB of address space, ~40 MiB of it resident (Python, NumPy, OpenCV,
    # Pillow): 768 MiB leaves ~300 MiB for one decode, over twice the 128 MiB decode budget (the
    # largest images that budget admits are prepared within it: tests/integration/test_decode_pool.py).
    # Resident memory stays far below the address space (~40 MiB at rest + the decode): two workers
    # each using their ~300 MiB of room beside the service (~650 MiB) stay within the 2 GiB Kubernetes
    # limit. The fork server runs NumPy with one BLAS thread, so the start size does not grow with cores.
    decode_worker_memory_max_bytes: int = Field(default=768 * MEBIBYTE_BYTES, ge=512 * MEBIBYTE_BYTES)
    image_cost_unit_bytes: int = Field(default=MEBIBYTE_BYTES, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # NoDecode: the environment holds "key1,key2", not the JSON list pydantic-settings would expect.
    api_keys: Annotated[frozenset[SecretStr], NoDecode] = frozenset()
    metrics_require_api_key: bool = False
    # The decode budget: what one upload may cost, known from its header before a pixel is decoded.
    image_max_decoded_bytes: int = Field(default=128 * MEBIBYTE_BYTES, gt=0)
    image_max_aspect_ratio: float = Field(default=32.0, ge=1.0)
    jpeg_max_scans: int = Field(default=24, ge=1, le=10_000)
    # Connections: what one client may hold, and for how long.
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=MEBIBYTE_BYTES)
    http_header_timeout_seconds: float = Field(default=10.0, gt=0.0, le=600.0)
    http_keep_alive_timeout_seconds: int = Field(default=5, ge=1, le=600)
    http_max_connections: int = Field(default=256, ge=1, le=65536)
    upload_idle_timeout_seconds: float = Field(default=10.0, gt=0.0, le=600.0)
    upload_timeout_seconds: float = Field(default=60.0, gt=0.0, le=3600.0)
    upload_spool_max_bytes: int = Field(default=256 * MEBIBYTE_BYTES, gt=0)
    readiness_stall_seconds: float = Field(default=15.0, gt=0.0, le=3600.0)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("min_confidence", mode="before")
    @classmethod
    def _empty_means_the_cards(cls, value: object) -> object:
        # Compose passes an unset host variable on as "" (`${DIGITSERVE_MIN_CONFIDENCE:-}`).
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("batch_max_size")
    @classmethod
    def _require_power_of_two(cls, value: int) -> int:
        # Powers of 2 keep the batch-size histogram buckets (1, 2, 4 ... max) exact and match the
        # shapes the model is warmed up with.
        if value & (value - 1):
            raise ValueError("must be a power of 2: 1, 2, 4 ... 1024")
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_comma_separated_keys(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, Iterable) and not isinstance(value, bytes):
            keys = (key.get_secret_value() if isinstance(key, SecretStr) else key for key in value)
            return frozenset(key.strip() for key in keys if isinstance(key, str) and key.strip())
        return value

    @field_validator("api_keys")
    @classmethod
    def _require_strong_header_safe_keys(cls, value: frozenset[SecretStr]) -> frozenset[SecretStr]:
        # The message says which rule failed, never which key: it ends up in start-up logs.
        for key in value:
            text = key.get_secret_value()
            if len(text) < API_KEY_MIN_CHARACTERS or not all("!" <= char <= "~" for char in text):
                raise ValueError(
                    f"each API key must be at least {API_KEY_MIN_CHARACTERS} printable ASCII characters "
                    "without spaces (keys are separated by commas)"
                )
        return value

    @model_validator(mode="after")
    def _require_keys_to_restrict_metrics(self) -> Settings:
        if self.metrics_require_api_key and not self.api_keys:
            raise ValueError("metrics_require_api_key needs at least one key in api_keys")
        return self

    @model_validator(mode="after")
    def _require_spool_fits_one_upload(self) -> Settings:
        if self.upload_spool_max_bytes < self.upload_max_bytes:
            raise ValueError(
                f"upload_spool_max_bytes ({self.upload_spool_max_bytes}) must be at least "
                f"upload_max_bytes ({self.upload_max_bytes}), or no upload of the largest size could arrive"
            )
        return self

    @model_validator(mode="after")
    def _require_queue_fits_a_full_batch_request(self) -> Settings:
        # A batch request queues all its files at once; a queue smaller than the largest batch or
        # the largest upload would refuse such requests even when the service is idle.
        smallest = max(self.batch_max_size, self.batch_max_files)
        if self.queue_max_size < smallest:
            raise ValueError(
                f"queue_max_size ({self.queue_max_size}) must be at least batch_max_size "
                f"({self.batch_max_size}) and batch_max_files ({self.batch_max_files})"
            )
        return self


def variable_name(field: str) -> str:
    """A settings field's environment variable: `batch_max_size` -> `DIGITSERVE_BATCH_MAX_SIZE`."""
    return f"{Settings.model_config.get('env_prefix', '')}{field.upper()}"


def _show_value(field: str, value: object) -> str:
    # API keys are never echoed, not even refused ones: start-up lines end up in logs.
    if field in SECRET_FIELDS:
        return "<hidden>"
    text = str(value)
    if len(text) > SHOWN_VALUE_MAX_CHARACTERS:
        text = text[:SHOWN_VALUE_MAX_CHARACTERS] + "..."
    return shlex.quote(text)


def _name_variables(message: str) -> str:
    """Writes each field named in a message as its environment variable (`queue_max_size` ->
    `DIGITSERVE_QUEUE_MAX_SIZE`): the variables are what the reader sets."""
    fields = "|".join(sorted(Settings.model_fields, key=len, reverse=True))
    return re.sub(rf"\b({fields})\b", lambda match: variable_name(match.group(1)), message)


def describe_settings_error(error: ValidationError) -> str:
    """A refused configuration -> one line per problem, naming the environment variable at fault, the
    value it was given and what it allows (`DIGITSERVE_BATCH_MAX_SIZE=48: must be a power of 2: 1, 2,
    4 ... 1024`), for the start-up message."""
    lines = []
    for problem in error.errors():
        message = _name_variables(problem["msg"].removeprefix("Value error, "))
        fields = [str(part) for part in problem["loc"] if isinstance(part, str)]
        # A rule across fields (a model validator) has no location; its message names the variables
        # and their values.
        if fields:
            message = f"{variable_name(fields[0])}={_show_value(fields[0], problem['input'])}: {message}"
        lines.append(message)
    return "\n".join(lines)


def describe_settings(settings: Settings) -> list[str]:
    """The effective settings, one `DIGITSERVE_NAME=value` line each in field order; the API keys are
    counted, never shown (`<hidden: 2>`), and an unset optional value is empty."""
    lines = []
    for field in Settings.model_fields:
        value = getattr(settings, field)
        if field in SECRET_FIELDS:
            shown = f"<hidden: {len(value)}>" if value else ""
        elif isinstance(value, bool):
            shown = str(value).lower()
        else:
            shown = "" if value is None else str(value)
        lines.append(f"{variable_name(field)}={shown}")
    return lines


def unknown_variable_warnings(environment: Mapping[str, str]) -> list[str]:
    """One warning per `DIGITSERVE_*` variable that no setting reads, naming the closest known one: a
    misspelt variable is otherwise ignored without a word, and the service runs with the default."""
    prefix = Settings.model_config.get("env_prefix", "")
    known = {variable_name(field) for field in Settings.model_fields} | OTHER_KNOWN_VARIABLES
    warnings = []
    for name in sorted(environment):
        # pydantic-settings matches names case-insensitively.
        upper_name = name.upper()
        if not upper_name.startswith(prefix) or upper_name in known:
            continue
        # Compared without the prefix, which every candidate shares and which would make all look close.
        suffix = upper_name.removeprefix(prefix)
        closest = difflib.get_close_matches(suffix, [field.upper() for field in Settings.model_fields], n=1)
        hint = f"; did you mean {prefix}{closest[0]}?" if closest else " (README: Settings)"
        warnings.append(f"{name} is not a setting of the service and is ignored{hint}")
    return warnings
