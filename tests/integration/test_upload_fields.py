"""An upload route reads the one `file` field it documents: a repeated `file` field is refused, not reduced.

FastAPI keeps the last of several form fields of one name, so a client that sent two images to
/predict would get the digit of one of them as if it were the only one. Both single-image routes
answer 422 `invalid_request` instead, before any decoding, and point to /predict/batch.
"""

from __future__ import annotations

import pytest

from testkit.images import encode_png

pytestmark = pytest.mark.integration

SINGLE_IMAGE_ROUTES = ("/predict", "/preprocess")


def two_file_fields(images) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (f"{index}.png", encode_png(image), "image/png")) for index, image in enumerate(images)]


@pytest.mark.parametrize("route", SINGLE_IMAGE_ROUTES)
async def test_two_file_fields_are_refused_with_422_invalid_request(service, mnist_test_samples, route):
    images, _ = mnist_test_samples
    response = await service.client.post(route, files=two_file_fields(images[:2]))
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"detail", "code"} and body["code"] == "invalid_request"
    assert "one `file` field" in body["detail"] and "/predict/batch" in body["detail"]


async def test_a_repeated_file_field_is_refused_before_decoding_or_the_model(service, mnist_test_samples):
    images, _ = mnist_test_samples
    await service.client.post("/predict", files=two_file_fields(images[:3]))
    assert service.sample("digitserve_preprocess_duration_seconds_count") == 0
    assert service.sample("digitserve_batch_size_count") == 0
    assert service.sample("digitserve_rejected_requests_total", {"reason": "invalid_request"}) == 1


@pytest.mark.parametrize("route", SINGLE_IMAGE_ROUTES)
async def test_one_file_field_is_still_accepted(service, mnist_test_samples, route):
    images, _ = mnist_test_samples
    response = await service.client.post(route, files=two_file_fields(images[:1]))
    assert response.status_code == 200, response.text


async def test_the_batch_route_still_takes_several_files_fields(service, mnist_test_samples):
    images, _ = mnist_test_samples
    files = [("files", (f"{index}.png", encode_png(image))) for index, image in enumerate(images[:2])]
    response = await service.client.post("/predict/batch", files=files)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 2


@pytest.mark.parametrize("route", SINGLE_IMAGE_ROUTES)
async def test_openapi_documents_the_refusal_without_a_new_parameter(service, route):
    document = (await service.client.get("/openapi.json")).json()
    operation = document["paths"][route]["post"]
    assert "invalid_request" in operation["responses"]["422"]["description"]
    assert "parameters" not in operation
    body_schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].split("/")[-1]
    assert list(document["components"]["schemas"][body_schema]["properties"]) == ["file"]


UPLOAD_FIELDS = {
    "/predict": "file",
    "/predict/batch": "files",
    "/read": "file",
    "/read/batch": "files",
    "/preprocess": "file",
}


@pytest.mark.parametrize(("route", "field"), UPLOAD_FIELDS.items())
async def test_openapi_documents_each_upload_as_a_binary_file_swagger_ui_can_send(service, route, field):
    # Swagger UI's "Try it out" offers a file picker for `format: binary`, also for each item of a list;
    # for FastAPI's own `contentMediaType` it offered a text box for each item of `files`.
    document = (await service.client.get("/openapi.json")).json()
    operation = document["paths"][route]["post"]
    body_schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].split("/")[-1]
    schema = document["components"]["schemas"][body_schema]
    assert schema["required"] == [field]
    field_schema = schema["properties"][field]
    file_schema = field_schema["items"] if field_schema.get("type") == "array" else field_schema
    assert (field_schema.get("type") == "array") is (field == "files")
    assert {key: file_schema[key] for key in ("type", "format")} == {"type": "string", "format": "binary"}
    assert "contentMediaType" not in file_schema
