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
