"""Domain errors: each failure of the request path has one HTTP status and one stable snake_case code.

The pipeline raises these without knowing about HTTP; the single exception handler registered in
`app.main` turns any of them into a JSON body `{"detail": ..., "code": ...}` with the class's status.
Training code reuses the input errors (a folder dataset with an unreadable file).
"""

from __future__ import annotations


class DigitServeError(Exception):
    """Base of every domain error.

    Attributes:
        status_code: HTTP status the API answers with.
        code: stable machine-readable identifier, snake_case.
    """

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NoDigitFoundError(DigitServeError):
    """The image decoded, but holds no ink that could be a digit (blank, uniform, only specks)."""

    status_code = 422
    code = "no_digit_found"


# --- 400: the upload is not a usable image -------------------------------------------------------


class EmptyUploadError(DigitServeError):
    """The uploaded file has zero bytes."""

    status_code = 400
    code = "empty_file"


class UndecodableImageError(DigitServeError):
    """The bytes claim or look like an image but cannot be decoded (corrupt, truncated, not an image)."""

    status_code = 400
    code = "undecodable_image"


class InvalidRequestError(DigitServeError):
    """The request is malformed: a missing multipart field, a wrong field name, an unparsable body."""

    status_code = 422
    code = "invalid_request"


# --- 401: access control --------------------------------------------------------------------------


class UnauthorizedError(DigitServeError):
    """The endpoint requires an API key and none, or a wrong one, was given."""

    status_code = 401
    code = "unauthorized"


# --- 413: too big ----------------------------------------------------------------------------------


class PayloadTooLargeError(DigitServeError):
    """The request body (Content-Length, or the bytes actually read) is over the upload limit."""

    status_code = 413
    code = "payload_too_large"


class ImageTooLargeError(DigitServeError):
    """The image's pixel count is over the limit (absurd dimensions or a decompression bomb)."""

    status_code = 413
    code = "image_too_large"


class TooManyFilesError(DigitServeError):
    """A batch request carries more files than the configured maximum."""

    status_code = 413
    code = "too_many_files"


# --- 415: a format we do not read ---------------------------------------------------------------------


class UnsupportedImageTypeError(DigitServeError):
    """The file is of a type the service does not decode (SVG, PDF, ZIP, text...)."""

    status_code = 415
    code = "unsupported_image_type"


# --- 5xx: the service, not the client -----------------------------------------------------------------


class ModelError(DigitServeError):
    """The model call for the batch holding this request failed; other batches are unaffected."""

    status_code = 500
    code = "model_error"


class QueueFullError(DigitServeError):
    """The batching queue is at capacity; the client should retry after `retry_after_seconds`."""

    status_code = 503
    code = "queue_full"

    def __init__(self, detail: str, retry_after_seconds: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class ServiceNotReadyError(DigitServeError):
    """The model is not loaded and warmed yet, or the service is shutting down."""

    status_code = 503
    code = "not_ready"


class RequestTimeoutError(DigitServeError):
    """The prediction did not complete within the request deadline."""

    status_code = 504
    code = "request_timeout"


# --- start-up ---------------------------------------------------------------------------------------


class ModelLoadError(DigitServeError):
    """The model folder is missing, holds no version, or is not the expected SavedModel (at start-up)."""

    status_code = 500
    code = "model_load_failed"
