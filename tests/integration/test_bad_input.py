"""Every kind of bad input gets a clear JSON error with its status and stable code, never a 500.

Each case also leaves the service healthy: the last test sends them all, then a good image.
"""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from testkit.images import encode_png, encode_with_pillow
from tests.integration.conftest import run_service

pytestmark = pytest.mark.integration


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG header claiming `width` x `height` pixels, followed by a few bytes of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(bytes(1000))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def digit_png() -> bytes:
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 12:16] = 255  # a "1"
    return encode_png(image)


def assert_error(response, status_code: int, code: str) -> None:
    assert response.status_code == status_code, response.text
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == code
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10


BAD_UPLOADS = {
    "empty_file": (b"", 400, "empty_file"),
    "random_bytes": (bytes(range(7, 250)) * 4, 400, "undecodable_image"),
    "truncated_png": (digit_png()[:60], 400, "undecodable_image"),
    "corrupt_jpeg": (b"\xff\xd8\xff\xe0" + b"\x13\x37" * 300, 400, "undecodable_image"),
    "pdf": (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n", 415, "unsupported_image_type"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><text>7</text></svg>', 415, "unsupported_image_type"),
    "text": (b"seven\n", 415, "unsupported_image_type"),
    "absurd_dimensions": (png_header_only(100_000, 100_000), 413, "image_too_large"),
    "blank_image": (encode_png(np.full((64, 64), 255, dtype=np.uint8)), 422, "no_digit_found"),
    "only_specks": (encode_png(np.pad(np.full((1, 1), 255, np.uint8), 100)), 422, "no_digit_found"),
}


@pytest.mark.parametrize(("data", "status_code", "code"), BAD_UPLOADS.values(), ids=BAD_UPLOADS.keys())
@pytest.mark.parametrize("route", ["/predict", "/preprocess"])
async def test_bad_upload_gets_its_status_and_code(service, route, data, status_code, code):
    response = await service.client.post(route, files={"file": ("upload.png", data, "image/png")})
    assert_error(response, status_code, code)


async def test_decompression_bomb_is_refused_by_the_pixel_limit(make_settings):
    # 6000 x 6000 blank pixels compress to ~40 kB: small upload, 36 megapixels once decoded.
    bomb = encode_png(np.zeros((6000, 6000), dtype=np.uint8))
    assert len(bomb) < 100_000
    async with run_service(make_settings(image_max_pixels=10_000_000)) as service:
        response = await service.client.post("/predict", files={"file": ("bomb.png", bomb)})
    assert_error(response, 413, "image_too_large")


async def test_the_decode_limits_come_from_the_settings(make_settings):
    settings = make_settings(
        image_max_decoded_bytes=1024 * 1024, image_max_aspect_ratio=2.0, jpeg_max_scans=5
    )
    rgba = Image.new("RGBA", (1000, 1000), "white")  # about 7 MB to decode and convert
    progressive = Image.new("RGB", (64, 64))  # saved with libjpeg's 10 scans
    uploads = {
        "rgba": (encode_with_pillow(rgba, "PNG"), 413, "image_too_large"),
        "wide": (encode_png(np.full((30, 90), 255, dtype=np.uint8)), 422, "image_too_elongated"),
        "progressive": (encode_with_pillow(progressive, "JPEG", progressive=True), 413, "image_too_complex"),
    }
    async with run_service(settings) as service:
        for data, status_code, code in uploads.values():
            response = await service.client.post("/predict", files={"file": ("upload", data)})
            assert_error(response, status_code, code)


async def test_missing_file_field_is_422_invalid_request(service):
    response = await service.client.post("/predict", files={"image": ("digit.png", digit_png())})
    assert_error(response, 422, "invalid_request")
    assert "the form has no `file` field" in response.json()["detail"]
    assert "curl -F file=@" in response.json()["detail"]


# A raw upload: the image as the whole body (curl --data-binary @digit.png; without -H, curl labels it
# a urlencoded form), or the image as JSON.
RAW_BODY_TYPES = ("image/png", "application/octet-stream", "application/x-www-form-urlencoded", "")
UPLOAD_FIELDS = {"/predict": "file", "/predict/batch": "files", "/read": "file", "/read/batch": "files"}


@pytest.mark.parametrize("content_type", RAW_BODY_TYPES, ids=lambda kind: kind or "no-content-type")
@pytest.mark.parametrize(("route", "field"), UPLOAD_FIELDS.items())
async def test_a_raw_upload_is_told_to_send_the_multipart_field(service, route, field, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = await service.client.post(route, content=digit_png(), headers=headers)
    assert_error(response, 422, "invalid_request")
    detail = response.json()["detail"]
    assert f"file in the multipart/form-data field `{field}`" in detail and f"curl -F {field}=@" in detail
    assert "not a multipart/form-data form" in detail
    if content_type:
        assert f"the body is {content_type}" in detail


@pytest.mark.parametrize(("route", "field"), UPLOAD_FIELDS.items())
async def test_a_form_part_without_a_filename_is_told_to_send_a_file(service, route, field):
    # curl -F file=<digit.png sends the bytes without a filename: the form field is then text.
    response = await service.client.post(route, files={field: (None, digit_png())})
    assert_error(response, 422, "invalid_request")
    detail = response.json()["detail"]
    assert f"a `{field}` part of the form has no filename" in detail and f"curl -F {field}=@" in detail
    assert "UploadFile" not in detail and "class" not in detail


async def test_a_json_body_is_told_to_send_the_multipart_field(service):
    response = await service.client.post("/predict", json={"file": "iVBORw0KGgo..."})
    assert_error(response, 422, "invalid_request")
    assert "the body is application/json, not a multipart/form-data form" in response.json()["detail"]


async def test_a_raw_upload_is_refused_before_decoding_or_the_model(service):
    await service.client.post("/predict", content=digit_png(), headers={"content-type": "image/png"})
    assert service.sample("digitserve_preprocess_duration_seconds_count") == 0
    assert service.sample("digitserve_rejected_requests_total", {"reason": "invalid_request"}) == 1


async def test_a_content_type_that_is_no_media_type_is_not_echoed(service):
    response = await service.client.post(
        "/predict", content=digit_png(), headers={"content-type": "<script>alert(1)</script>"}
    )
    assert_error(response, 422, "invalid_request")
    assert "script" not in response.json()["detail"]


async def test_body_over_limit_is_refused_from_content_length(make_settings):
    async with run_service(make_settings(upload_max_bytes=20_000)) as service:
        response = await service.client.post(
            "/predict", files={"file": ("big.png", b"\x89PNG" + bytes(30_000))}
        )
        refused = service.sample("digitserve_rejected_requests_total", {"reason": "payload_too_large"})
        counted = service.sample(
            "digitserve_http_requests_total", {"route": "/predict", "method": "POST", "code": "413"}
        )
    assert_error(response, 413, "payload_too_large")
    assert "20000" in response.json()["detail"]
    assert refused == 1 and counted == 1


async def test_chunked_body_over_limit_is_refused_while_streaming(make_settings):
    boundary = "digitserveboundary"
    chunks_read = 0

    async def multipart_chunks():
        nonlocal chunks_read
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        for _ in range(100):  # 100 x 10 kB, far past the 20 kB limit
            chunks_read += 1
            yield bytes(10_000)
        yield f"\r\n--{boundary}--\r\n".encode()

    async with run_service(make_settings(upload_max_bytes=20_000)) as service:
        response = await service.client.post(
            "/predict",
            content=multipart_chunks(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


async def test_too_many_files_is_413(make_settings):
    async with run_service(make_settings(batch_max_files=3)) as service:
        files = [("files", (f"{i}.png", digit_png())) for i in range(4)]
        response = await service.client.post("/predict/batch", files=files)
    assert_error(response, 413, "too_many_files")


async def test_batch_without_files_is_422(service):
    response = await service.client.post("/predict/batch", files={"file": ("wrong-field.png", digit_png())})
    assert_error(response, 422, "invalid_request")


async def test_unknown_route_and_wrong_method_use_the_same_error_body(service):
    assert_error(await service.client.get("/no-such-route"), 404, "not_found")
    assert_error(await service.client.get("/predict"), 405, "method_not_allowed")


async def test_service_keeps_serving_after_every_bad_input(service):
    for data, _, _ in BAD_UPLOADS.values():
        await service.client.post("/predict", files={"file": ("upload.png", data)})
    response = await service.client.post("/predict", files={"file": ("one.png", digit_png())})
    assert response.status_code == 200
    assert service.sample("digitserve_batch_size_count") == 1  # bad input never reached the model
    assert service.sample("digitserve_rejected_requests_total", {"reason": "undecodable_image"}) == 3


def documented_examples(document: dict, route: str, status_code: int) -> dict[str, dict]:
    """The error examples the OpenAPI document gives for one status of `POST route`, by code."""
    response = document["paths"][route]["post"]["responses"][str(status_code)]
    return response["content"]["application/json"]["examples"]


async def test_every_error_answer_is_documented_under_its_status_with_an_example(make_settings):
    multipart_without_boundary = {"content-type": "multipart/form-data"}
    async with run_service(make_settings(batch_max_files=2)) as service:
        document = (await service.client.get("/openapi.json")).json()
        answers = [
            await service.client.post("/predict", files={"file": ("upload.png", data)})
            for data, _, _ in BAD_UPLOADS.values()
        ]
        answers.append(
            await service.client.post("/predict", content=digit_png(), headers={"content-type": "image/png"})
        )
        answers.append(
            await service.client.post("/predict", content=b"--x", headers=multipart_without_boundary)
        )
        answers.append(
            await service.client.post("/predict/batch", files=[("files", ("d.png", digit_png()))] * 3)
        )
    for response in answers:
        route = response.request.url.path
        examples = documented_examples(document, route, response.status_code)
        code = response.json()["code"]
        assert code in examples, (route, response.status_code, code)
        assert examples[code]["value"]["code"] == code and examples[code]["value"]["detail"]
    assert {response.json()["code"] for response in answers} >= {
        "bad_request",
        "invalid_request",
        "too_many_files",
    }
    # The raw upload's example is the very answer: the document shows what a curl user will see.
    raw_upload = answers[len(BAD_UPLOADS)].json()
    assert documented_examples(document, "/predict", 422)["invalid_request"]["value"] == raw_upload


@pytest.mark.parametrize("route", ["/predict", "/predict/batch", "/read", "/read/batch", "/preprocess"])
async def test_each_error_status_of_an_upload_route_lists_its_codes_each_with_an_example(service, route):
    document = (await service.client.get("/openapi.json")).json()
    responses = document["paths"][route]["post"]["responses"]
    error_statuses = [status for status in responses if int(status) >= 400]
    assert {"400", "413", "415", "422", "503"} <= set(error_statuses)
    for status in error_statuses:
        examples = documented_examples(document, route, int(status))
        listed = re.findall(r"`(\w+)`", responses[status]["description"].split("one of", 1)[1])
        assert list(examples) == listed, status
        assert all(example["value"]["code"] == code for code, example in examples.items())
    assert "bad_request" in documented_examples(document, route, 400)
    first_examples = [
        next(iter(documented_examples(document, route, int(s)).values())) for s in error_statuses
    ]
    assert len({example["value"]["code"] for example in first_examples}) == len(error_statuses)
