"""POST /read and /read/batch read whole numbers written from MNIST test digits, as scans and photos.

Two checks, as for /predict: the exact one (HTTP answers what segmentation, the model in its two
looks and the choice rule give in this process) and the reading one (the fixture model, ~97 % a
digit, reads most of the numbers right, and every digit's box lies on its drawn digit).
"""

from __future__ import annotations

import asyncio
import base64

import cv2
import numpy as np
import pytest

from app.pipeline.decode import decode_image
from app.pipeline.image_header import DecodeLimits, inspect_image
from app.pipeline.read_choice import NumberLooks, choose_reading
from app.pipeline.segment import segment_number
from digits.model import DigitModel
from testkit.images import encode_jpeg, encode_png
from testkit.written_numbers import load_digit_pool, write_number
from tests.integration.conftest import run_service

pytestmark = pytest.mark.integration

SEED = 20261202
NUMBER_COUNT = 8
MIN_RIGHT = 6  # of 8 numbers of 3-5 digits, at ~97 % a digit
MIN_BOX_OVERLAP = 0.5  # intersection over union of a found box and its drawn digit's


@pytest.fixture(scope="module")
def written_numbers():
    """Numbers of 3-5 MNIST test digits: scans (PNG) and photos (JPEG), one with a touching pair."""
    pool = load_digit_pool("mnist", "test", limit=2000)
    rng = np.random.default_rng(SEED)
    numbers = []
    for index in range(NUMBER_COUNT):
        rendering = ("scan", "photo")[index % 2]
        number = write_number(
            pool, 3 + index % 3, rng, is_touching=index == NUMBER_COUNT - 1, rendering=rendering
        )
        data = encode_png(number.image) if rendering == "scan" else encode_jpeg(number.image)
        numbers.append((number, data))
    return numbers


def overlap(first, second) -> float:
    (x1, y1, w1, h1), (x2, y2, w2, h2) = first, second
    width = max(0, min(x1 + w1, x2 + w2) - max(x1, x2))
    height = max(0, min(y1 + h1, y2 + h2) - max(y1, y2))
    return width * height / (w1 * h1 + w2 * h2 - width * height)


async def post_read(client, data: bytes, **params) -> dict:
    response = await client.post("/read", files={"file": ("number.png", data)}, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_read_answers_what_segmentation_model_and_choice_give(service, models_dir, written_numbers):
    answers = await asyncio.gather(*(post_read(service.client, data) for _, data in written_numbers))
    model = DigitModel.load(models_dir)
    looks_taken = []
    for (_, data), answer in zip(written_numbers, answers, strict=True):
        number = segment_number(decode_image(data), max_digits=20)
        looks = NumberLooks([number])
        while inputs := looks.next_inputs():
            looks.take(model.predict_batch(np.stack(inputs)))
        looks_taken.append(looks.looks_taken)
        expected = choose_reading(number, looks.rows[0], service.state.answer_policy, max_digits=20)
        assert answer["text"] == expected.text
        assert answer["unsure"] == expected.unsure
        assert [list(d["box"].values()) for d in answer["digits"]] == [
            list(digit.candidate.box) for digit in expected.digits
        ]
        np.testing.assert_allclose(
            [d["confidence"] for d in answer["digits"]],
            [d.prediction.confidence for d in expected.digits],
            atol=1e-5,
        )
    # The clean digits were read at the first look; the touching pair's cuts needed a second.
    assert looks_taken[:-1] == [1] * (NUMBER_COUNT - 1) and looks_taken[-1] == 2, looks_taken


async def test_read_reads_most_numbers_and_boxes_each_digit(service, written_numbers):
    answers = await asyncio.gather(*(post_read(service.client, data) for _, data in written_numbers))
    right = 0
    for (number, _), answer in zip(written_numbers, answers, strict=True):
        right += answer["text"] == number.text
        assert answer["text"] == "".join(str(d["digit"]) for d in answer["digits"])
        if len(answer["digits"]) == len(number.boxes):
            boxes = [
                (d["box"]["x"], d["box"]["y"], d["box"]["width"], d["box"]["height"])
                for d in answer["digits"]
            ]
            assert all(
                overlap(found, drawn) >= MIN_BOX_OVERLAP
                for found, drawn in zip(boxes, number.boxes, strict=True)
            )
            assert [box[0] for box in boxes] == sorted(box[0] for box in boxes)  # left to right
    assert right >= MIN_RIGHT, [answer["text"] for answer in answers]


async def test_read_response_has_the_documented_fields(service, written_numbers):
    answer = await post_read(service.client, written_numbers[0][1])
    assert set(answer) == {"text", "digits", "unsure", "reason", "inverted", "model_version"}
    assert set(answer["digits"][0]) == {
        "digit",
        "confidence",
        "unsure",
        "reason",
        "alternatives",
        "box",
        "model_view",
    }
    assert answer["digits"][0]["model_view"] is None
    assert answer["inverted"] is True and answer["model_version"] == "1"
    assert answer["unsure"] == (answer["reason"] is not None)


async def test_model_view_shows_each_28x28_digit_the_model_read(service, written_numbers):
    answer = await post_read(service.client, written_numbers[0][1], include_model_view="true")
    for digit in answer["digits"]:
        png = np.frombuffer(base64.b64decode(digit["model_view"]), dtype=np.uint8)
        assert cv2.imdecode(png, cv2.IMREAD_UNCHANGED).shape == (28, 28)


async def test_read_batch_answers_in_upload_order_with_errors_in_place(service, written_numbers):
    files = [
        ("files", ("a.png", written_numbers[0][1])),
        ("files", ("b.png", b"not an image")),
        ("files", ("c.jpg", written_numbers[1][1])),
    ]
    response = await service.client.post("/read/batch", files=files)
    assert response.status_code == 200, response.text
    first, broken, third = response.json()["readings"]
    assert [item["filename"] for item in (first, broken, third)] == ["a.png", "b.png", "c.jpg"]
    assert first["text"] == (await post_read(service.client, written_numbers[0][1]))["text"]
    assert third["text"] == (await post_read(service.client, written_numbers[1][1]))["text"]
    assert (
        set(first)
        == set(third)
        == {"filename", "text", "digits", "unsure", "reason", "inverted", "model_version"}
    )
    assert broken["status_code"] in (400, 415) and broken["error"]["code"] in (
        "undecodable_image",
        "unsupported_image_type",
    )


async def test_read_batch_refuses_more_files_than_allowed(make_settings, written_numbers):
    async with run_service(make_settings(batch_max_files=2)) as running:
        files = [("files", (f"{i}.png", written_numbers[0][1])) for i in range(3)]
        response = await running.client.post("/read/batch", files=files)
    assert response.status_code == 413 and response.json()["code"] == "too_many_files"


async def test_a_full_read_batch_is_admitted_by_an_idle_service(make_settings, written_numbers):
    """Room is counted once: the admission estimate (12 a number, at most half the queue) and then
    only the cut-outs beyond it (these 16 numbers have 140). Counted twice, they took 224 of 200 (413)."""
    async with run_service(make_settings(queue_max_size=200, batch_max_files=16)) as running:
        files = [("files", (f"{i}.png", written_numbers[i % NUMBER_COUNT][1])) for i in range(16)]
        response = await running.client.post("/read/batch", files=files)
        assert response.status_code == 200, response.text
        assert all("text" in reading for reading in response.json()["readings"])
        assert running.state.batcher.reserved_units == 0  # all room given back


async def test_a_queue_smaller_than_a_numbers_room_still_reads_a_short_number(make_settings):
    """A queue tuned for /predict (4 places) admits a number with the room it has; a number that then
    needs more cut-outs than the whole queue is refused for good (413), in words about the number."""
    async with run_service(make_settings(queue_max_size=4, batch_max_files=4, batch_max_size=4)) as running:
        short = await running.client.post("/read", files={"file": ("11.png", ones(2))})
        assert short.status_code == 200, short.text
        photo = ones(2, side_pixels=700, as_jpeg=True)  # its decoding holds a place of its own
        assert inspect_image(photo, DecodeLimits()).decoded_bytes >= 1 << 20
        read_photo = await running.client.post("/read", files={"file": ("11.jpg", photo)})
        assert read_photo.status_code == 200, read_photo.text
        long = await running.client.post("/read", files={"file": ("111111.png", ones(6))})
        assert running.state.batcher.reserved_units == 0  # all room given back, either way
    assert long.status_code == 413 and long.json()["code"] == "payload_too_large"
    assert "cut-outs through the model" in long.json()["detail"]


def ones(count: int, side_pixels: int = 0, as_jpeg: bool = False) -> bytes:
    """`count` 1s written apart (as many cut-outs), on a page at least `side_pixels` a side."""
    page = np.full((max(200, side_pixels), max(80 + 70 * count, side_pixels)), 255, np.uint8)
    for index in range(count):
        cv2.line(page, (70 + 70 * index, 60), (70 + 70 * index, 140), 20, 7)
    return encode_jpeg(np.dstack([page] * 3)) if as_jpeg else encode_png(page)


def one_and_two_close_zeros() -> bytes:
    """A 1, then two 0s written close: two groups of ink, read as three digits (close parts are read
    apart unless merging them reads far better)."""
    page = np.full((200, 420), 255, np.uint8)
    cv2.line(page, (60, 60), (60, 140), 20, 7)
    for center_x in (180, 245):  # rings 50 wide, 15 apart: closer than a gap between digits
        cv2.ellipse(page, (center_x, 100), (25, 40), 0, 0, 360, 20, 7)
    return encode_png(page)


def a_one() -> bytes:
    page = np.full((200, 200), 255, np.uint8)
    cv2.line(page, (100, 60), (100, 140), 20, 7)
    return encode_png(page)


async def test_too_many_digits_found_when_choosing_the_readings_stays_with_its_file(make_settings):
    async with run_service(make_settings(read_max_digits=2)) as running:
        single = await running.client.post("/read", files={"file": ("n.png", one_and_two_close_zeros())})
        files = [("files", ("100.png", one_and_two_close_zeros())), ("files", ("1.png", a_one()))]
        batch = await running.client.post("/read/batch", files=files)
    assert single.status_code == 422 and single.json()["code"] == "too_many_digits"
    assert batch.status_code == 200, batch.text
    first, second = batch.json()["readings"]
    assert first["status_code"] == 422 and first["error"]["code"] == "too_many_digits"
    assert first["filename"] == "100.png"
    assert second["filename"] == "1.png" and len(second["text"]) == 1


async def test_a_blank_page_is_no_digit_found(service):
    response = await service.client.post(
        "/read", files={"file": ("blank.png", encode_png(np.full((120, 400), 250, np.uint8)))}
    )
    assert response.status_code == 422 and response.json()["code"] == "no_digit_found"


async def test_more_digits_than_the_setting_allows_are_refused(make_settings, written_numbers):
    long_number = next(data for number, data in written_numbers if len(number.text) == 5)
    async with run_service(make_settings(read_max_digits=3)) as running:
        response = await running.client.post("/read", files={"file": ("n.png", long_number)})
    assert response.status_code == 422
    assert response.json()["code"] == "too_many_digits" and "at most 3" in response.json()["detail"]


async def test_read_refuses_a_file_that_is_not_an_image(service):
    response = await service.client.post("/read", files={"file": ("x.png", b"\x89PNG\r\n\x1a\nbroken")})
    assert response.status_code == 400 and response.json()["code"] == "undecodable_image"
