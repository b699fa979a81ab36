"""The client sends images in batches, retries a busy service after its Retry-After, splits a batch the
service finds too large, and turns every answer into a typed result or a `ServiceError`."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from digitserve.client import AsyncClient, Client
from digitserve.exchange import RetryPolicy, retry_wait_seconds
from digitserve.results import Alternative, Box, ImageError, Prediction, ServiceError
from tests.unit.digitserve.fake_service import FakeService

pytestmark = pytest.mark.unit

QUEUE_FULL = {"detail": "the queue is full; retry later", "code": "queue_full"}
NO_WAIT = RetryPolicy(max_attempts=3, default_wait_seconds=0.0)


@pytest.fixture
def fake() -> FakeService:
    return FakeService()


@pytest.fixture
def images(tmp_path):
    """Five image files, the fourth one unreadable to the fake service."""
    names = ["a.png", "b.png", "c.jpg", "bad.png", "e.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"image bytes of " + name.encode())
    return [str(tmp_path / name) for name in names]


def client_of(fake: FakeService, **options) -> Client:
    return Client("http://digitserve.test", transport=httpx.MockTransport(fake.handle), **options)


def test_predict_reads_one_image_into_a_typed_prediction_and_sends_the_key(fake, images):
    with client_of(fake, api_key="the-key-0123456789") as client:
        prediction = client.predict(images[0])
    assert prediction == Prediction(
        file=images[0],
        digit=7,
        confidence=0.9912,
        probabilities=(0.0,) * 7 + (0.9912, 0.0088, 0.0),
        unsure=False,
        reason=None,
        alternatives=(Alternative(7, 0.9912), Alternative(8, 0.0088)),
        inverted=True,
        model_version="6",
    )
    (request,) = fake.requests
    assert request.url.path == "/predict" and request.headers["x-api-key"] == "the-key-0123456789"
    assert fake.uploaded_names() == [["a.png"]]


def test_bytes_are_sent_as_an_image_and_answered_without_a_file_name(fake):
    with client_of(fake) as client:
        assert client.predict(b"\x89PNG...").file is None
    assert fake.uploaded_names() == [["image"]]


def test_predict_many_sends_batches_of_the_given_size_and_answers_in_order(fake, images):
    with client_of(fake) as client:
        results = client.predict_many(images, batch_size=2)
    assert fake.uploaded_names() == [["a.png", "b.png"], ["c.jpg", "bad.png"], ["e.png"]]
    assert {request.url.path for request in fake.requests} == {"/predict/batch"}
    assert [result.file for result in results] == images
    assert results[3] == ImageError(images[3], 422, "no_digit_found", "no ink")
    assert all(isinstance(result, Prediction) for index, result in enumerate(results) if index != 3)


def test_read_answers_the_number_with_each_digit_and_its_box(fake, images):
    with client_of(fake) as client:
        reading = client.read(images[0])
        (batch_item, item_error) = client.read_many([images[0], images[3]])
    assert (reading.text, reading.unsure, reading.reason) == ("42", True, "unsure_digit")
    assert [digit.digit for digit in reading.digits] == [4, 2]
    assert reading.digits[1].box == Box(12, 2, 9, 20) and reading.digits[1].reason == "low_confidence"
    assert batch_item == reading and item_error.code == "no_digit_found"
    assert [request.url.path for request in fake.requests] == ["/read", "/read/batch"]


def test_a_busy_service_is_asked_again_after_its_retry_after(fake, images):
    fake.refuse(503, QUEUE_FULL, **{"Retry-After": "1"})
    started = time.monotonic()
    with client_of(fake) as client:
        prediction = client.predict(images[0])
    assert time.monotonic() - started >= 1.0
    assert prediction.digit == 7 and len(fake.requests) == 2


def test_retries_are_bounded_and_the_last_refusal_is_raised(fake, images):
    for _ in range(5):
        fake.refuse(503, QUEUE_FULL, **{"Retry-After": "0"})
    with client_of(fake, retry=NO_WAIT) as client, pytest.raises(ServiceError) as refused:
        client.predict_many(images)
    assert (refused.value.status_code, refused.value.code) == (503, "queue_full")
    assert refused.value.detail == QUEUE_FULL["detail"] and len(fake.requests) == 3


def test_a_refused_request_raises_the_services_code_detail_and_status(fake, images):
    fake.refuse(401, {"detail": "missing or invalid API key", "code": "unauthorized"})
    with client_of(fake) as client, pytest.raises(ServiceError) as refused:
        client.predict_many(images)
    assert (refused.value.status_code, refused.value.code) == (401, "unauthorized")
    assert refused.value.detail == "missing or invalid API key" and len(fake.requests) == 1


def test_a_refusal_without_an_error_body_is_named_by_its_status(images):
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="<html>Bad gateway</html>"))
    with (
        Client("http://digitserve.test", transport=transport) as client,
        pytest.raises(ServiceError) as refused,
    ):
        client.predict(images[0])
    assert (refused.value.status_code, refused.value.code, refused.value.detail) == (
        502,
        "http_502",
        "Bad Gateway",
    )


def test_a_lone_image_the_service_refuses_raises_with_its_code(fake, images):
    with client_of(fake) as client, pytest.raises(ServiceError) as refused:
        client.predict(images[3])
    assert (refused.value.status_code, refused.value.code) == (422, "no_digit_found")


def test_a_batch_too_large_for_the_service_is_split_in_halves(fake, images):
    fake.refuse(413, {"detail": "the request body exceeds 10485760 bytes", "code": "payload_too_large"})
    with client_of(fake) as client:
        results = client.predict_many(images[:4], batch_size=4)
    assert fake.uploaded_names() == [
        ["a.png", "b.png", "c.jpg", "bad.png"],
        ["a.png", "b.png"],
        ["c.jpg", "bad.png"],
    ]
    assert [result.file for result in results] == images[:4]


def test_a_single_image_too_large_for_the_service_is_its_own_error(fake, images):
    fake.refuse(413, {"detail": "the request body exceeds 10485760 bytes", "code": "payload_too_large"})
    with client_of(fake) as client:
        (first, second) = client.predict_many(images[:2], batch_size=1)
    assert first == ImageError(images[0], 413, "payload_too_large", "the request body exceeds 10485760 bytes")
    assert isinstance(second, Prediction)


def test_an_unreachable_service_raises_a_service_error_saying_where(images):
    def refuse_connection(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    transport = httpx.MockTransport(refuse_connection)
    with Client("http://127.0.0.1:1", transport=transport) as client, pytest.raises(ServiceError) as refused:
        client.predict(images[0])
    assert (refused.value.status_code, refused.value.code) == (0, "service_unreachable")
    assert "http://127.0.0.1:1" in refused.value.detail and "Connection refused" in refused.value.detail


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://example.org", "http://", "not a url at all"])
def test_a_url_that_is_not_http_is_refused_at_once(url):
    with pytest.raises(ValueError, match="URL"):
        Client(url)


def test_a_missing_file_raises_before_anything_is_sent(fake, tmp_path):
    with client_of(fake) as client, pytest.raises(FileNotFoundError):
        client.predict_many([tmp_path / "nowhere.png"])
    assert fake.requests == []


@pytest.mark.parametrize(
    ("retry_after", "expected_seconds"),
    [("2", 2.0), (None, 1.0), ("soon", 1.0), ("-5", 0.0), ("86400", 30.0), ("nan", 1.0), ("inf", 1.0)],
    ids=["seconds", "absent", "unreadable", "past", "capped", "nan", "infinite"],
)
def test_the_wait_before_a_retry_follows_retry_after_within_bounds(retry_after, expected_seconds):
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    assert retry_wait_seconds(httpx.Response(503, headers=headers), RetryPolicy()) == expected_seconds


def test_retry_after_may_be_an_http_date():
    in_ten_seconds = email.utils.formatdate(time.time() + 10, usegmt=True)
    wait_seconds = retry_wait_seconds(
        httpx.Response(503, headers={"Retry-After": in_ten_seconds}), RetryPolicy()
    )
    assert 8.0 <= wait_seconds <= 10.0


async def test_the_async_client_batches_retries_and_reads_like_the_blocking_one(fake, images):
    fake.refuse(503, QUEUE_FULL, **{"Retry-After": "1"})
    transport = httpx.MockTransport(fake.handle)
    started = time.monotonic()
    async with AsyncClient("http://digitserve.test", transport=transport) as client:
        predictions = await client.predict_many(images, batch_size=3)
        reading = await client.read(images[0])
        streamed = [result async for result in client.iter_readings(images[3:], batch_size=1)]
    assert time.monotonic() - started >= 1.0
    assert fake.uploaded_names()[:3] == [["a.png", "b.png", "c.jpg"]] * 2 + [["bad.png", "e.png"]]
    assert [result.file for result in predictions] == images and isinstance(predictions[3], ImageError)
    assert reading.text == "42" and [result.file for result in streamed] == images[3:]
    assert isinstance(streamed[0], ImageError) and streamed[1].text == "42"


async def test_the_async_client_raises_the_services_refusal(fake, images):
    fake.refuse(401, {"detail": "missing or invalid API key", "code": "unauthorized"})
    transport = httpx.MockTransport(fake.handle)
    async with AsyncClient("http://digitserve.test", transport=transport) as client:
        with pytest.raises(ServiceError) as refused:
            await client.predict(images[0])
    assert refused.value.code == "unauthorized" and refused.value.status_code == 401
