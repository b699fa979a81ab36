"""Each domain error code has exactly one HTTP status, written in one table."""

from __future__ import annotations

import inspect

import pytest

from app.api.errors import HTTP_STATUS_BY_ERROR_CODE, http_status
from digits import errors

pytestmark = pytest.mark.unit

DOMAIN_ERRORS = [
    member
    for _, member in inspect.getmembers(errors, inspect.isclass)
    if issubclass(member, errors.DigitServeError)
]


@pytest.mark.parametrize("error_class", DOMAIN_ERRORS, ids=lambda error_class: error_class.__name__)
def test_every_domain_error_has_a_status_in_the_table(error_class):
    assert 400 <= http_status(error_class) <= 599


def test_codes_are_unique_so_that_one_code_means_one_failure():
    codes = [error_class.code for error_class in DOMAIN_ERRORS]
    assert len(codes) == len(set(codes))
    assert set(HTTP_STATUS_BY_ERROR_CODE) == set(codes)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.UndecodableImageError("x"), 400),
        (errors.ImageTooLargeError("x"), 413),
        (errors.UnsupportedImageTypeError("x"), 415),
        (errors.NoDigitFoundError("x"), 422),
        (errors.QueueFullError("x", retry_after_seconds=2), 503),
        (errors.RequestTimeoutError("x"), 504),
    ],
)
def test_an_error_instance_gets_the_status_of_its_class(error, status):
    assert http_status(error) == status


def test_domain_errors_carry_no_http_status():
    assert not any(hasattr(error_class, "status_code") for error_class in DOMAIN_ERRORS)
