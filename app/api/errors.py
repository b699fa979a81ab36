"""Domain error code -> HTTP status: the one table of how the API answers each failure.

The domain errors (`digits.errors`) carry a stable `code` and know nothing of HTTP; this table gives
each code its status, as mosec keeps its error taxonomy apart from the transport. An error class
missing here is a programming error, caught by the unit tests (every class must be listed).
"""

from __future__ import annotations

from digits import errors

HTTP_STATUS_BY_ERROR_CODE: dict[str, int] = {
    # 400: the upload is not a usable image
    errors.EmptyUploadError.code: 400,
    errors.UndecodableImageError.code: 400,
    # 401: access control
    errors.UnauthorizedError.code: 401,
    # 408: the client took too long to send its request (the connection is then closed)
    errors.RequestHeaderTimeoutError.code: 408,
    errors.UploadTimeoutError.code: 408,
    # 413: too big
    errors.PayloadTooLargeError.code: 413,
    errors.ImageTooLargeError.code: 413,
    errors.TooManyFilesError.code: 413,
    errors.ImageTooComplexError.code: 413,
    # 415: a format the service does not read
    errors.UnsupportedImageTypeError.code: 415,
    # 422: a well-formed request the service cannot act on
    errors.InvalidRequestError.code: 422,
    errors.NoDigitFoundError.code: 422,
    errors.TooManyDigitsError.code: 422,
    errors.ImageTooElongatedError.code: 422,
    # 431: a request head over the size or field-count limit
    errors.RequestHeaderTooLargeError.code: 431,
    # 5xx: the service, not the client
    errors.DigitServeError.code: 500,
    errors.ModelError.code: 500,
    errors.ModelLoadError.code: 500,
    errors.QueueFullError.code: 503,
    errors.ServiceNotReadyError.code: 503,
    errors.TooManyConnectionsError.code: 503,
    errors.UploadCapacityExhaustedError.code: 503,
    errors.TempSpaceFullError.code: 503,
    errors.RequestTimeoutError.code: 504,
    # 499 (nginx's convention): nobody reads it, but logs and metrics tell a dropped request apart.
    errors.ClientDisconnectedError.code: 499,
}

# The failures the framework answers before any route runs, by status: a body the multipart parser
# refuses (no boundary, a cut-off upload, more than 1,000 parts), an unknown path, a wrong method.
# No domain error stands for them; the error handlers give them these codes.
FRAMEWORK_ERROR_CODES: dict[int, str] = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


def http_status(error: errors.DigitServeError | type[errors.DigitServeError]) -> int:
    """The HTTP status the API answers a domain error (an instance or its class) with."""
    return HTTP_STATUS_BY_ERROR_CODE[error.code]
