"""Domain errors: each failure of reading a digit has one stable snake_case `code`, and no transport.

The pipeline, the model loader and the training loaders raise these without knowing about HTTP; the
service's API maps each code to its HTTP status in one table (`app.api.errors`), and training
turns them into CLI messages (a folder dataset with an unreadable file).
"""

from __future__ import annotations


class DigitServeError(Exception):
    """Base of every domain error.

    Attributes:
        code: stable machine-readable identifier, snake_case.
        detail: what went wrong, for a human (never a traceback or a library's internals).
    """

    code: str = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NoDigitFoundError(DigitServeError):
    """The image decoded, but holds no ink that could be a digit (blank, uniform, only specks)."""

    code = "no_digit_found"


class TooManyDigitsError(DigitServeError):
    """The image holds more digits in a row than a number may have (`DIGITSERVE_READ_MAX_DIGITS`)."""

    code = "too_many_digits"


# --- the upload is not a usable image ---


class EmptyUploadError(DigitServeError):
    """The uploaded file has zero bytes."""

    code = "empty_file"


class UndecodableImageError(DigitServeError):
    """The bytes claim or look like an image but cannot be decoded (corrupt, truncated, not an image)."""

    code = "undecodable_image"


class InvalidRequestError(DigitServeError):
    """The request is malformed: a missing multipart field, a wrong field name, an unparsable body."""

    code = "invalid_request"


# --- access control ---


class UnauthorizedError(DigitServeError):
    """The endpoint requires an API key and none, or a wrong one, was given."""

    code = "unauthorized"


# --- too big ---


class PayloadTooLargeError(DigitServeError):
    """The request body (Content-Length, or the bytes actually read) is over the upload limit."""

    code = "payload_too_large"


class ImageTooLargeError(DigitServeError):
    """The image's pixel count is over the limit (absurd dimensions or a decompression bomb)."""

    code = "image_too_large"


class TooManyFilesError(DigitServeError):
    """A batch request carries more files than the configured maximum."""

    code = "too_many_files"


# --- a format we do not read ---


class UnsupportedImageTypeError(DigitServeError):
    """The file is of a type the service does not decode (SVG, PDF, ZIP, text...)."""

    code = "unsupported_image_type"


# --- the service, not the client ---


class ModelError(DigitServeError):
    """The model call for the batch holding this request failed; other batches are unaffected."""

    code = "model_error"


class QueueFullError(DigitServeError):
    """The batching queue is at capacity; the client should retry after `retry_after_seconds`."""

    code = "queue_full"

    def __init__(self, detail: str, retry_after_seconds: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class ServiceNotReadyError(DigitServeError):
    """The model is not loaded and warmed yet, or the service is shutting down."""

    code = "not_ready"


class RequestTimeoutError(DigitServeError):
    """The prediction did not complete within the request deadline."""

    code = "request_timeout"


# --- start-up ---


class ModelLoadError(DigitServeError):
    """The model folder is missing, holds no version, or is not the expected SavedModel (at start-up)."""

    code = "model_load_failed"


class ClientDisconnectedError(DigitServeError):
    """The client closed the connection before its answer was ready; its remaining work was dropped."""

    code = "client_disconnected"


class ImageTooComplexError(DigitServeError):
    """Decoding the image would cost more work than one upload may (too many JPEG scans, past the
    decode time budget); the image's fault, not the service's."""

    code = "image_too_complex"


class ImageTooElongatedError(DigitServeError):
    """One side of the image is many times the other (a 1 x 40,000,000 strip): too thin to hold a digit,
    and costly to decode row by row."""

    code = "image_too_elongated"


# --- the connection and the transfer of the upload ---


class RequestHeaderTooLargeError(DigitServeError):
    """The request head (request line and header fields) is over the size or the field-count limit."""

    code = "request_header_too_large"


class RequestHeaderTimeoutError(DigitServeError):
    """The request head did not arrive in full within the time a client has to send one."""

    code = "request_header_timeout"


class UploadTimeoutError(DigitServeError):
    """The request body stopped arriving for too long, or took longer than the whole-body deadline."""

    code = "upload_timeout"


class TooManyConnectionsError(DigitServeError):
    """The server holds as many connections as it may; the client should retry after a moment."""

    code = "too_many_connections"
    retry_after_seconds = 1


class UploadCapacityExhaustedError(DigitServeError):
    """The uploads being received hold all the bytes the server may spool; retry after a moment."""

    code = "upload_capacity_exhausted"
    retry_after_seconds = 1


class TempSpaceFullError(DigitServeError):
    """The temporary folder that large uploads are spooled to is full (no space left on the device)."""

    code = "temp_space_full"
    retry_after_seconds = 1
