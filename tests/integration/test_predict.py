"""POST /predict, /predict/batch and /preprocess read MNIST digits, as PNGs and as photo-like JPEGs.

Two checks per payload: the exact one (what HTTP answers equals the model's own output on the image
the pipeline made, as `/preprocess` shows it) and the accuracy one (the fixture model reads at least
37 of the 40 chosen test digits; it scores ~97 % on MNIST test).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.pipeline.decode import decode_image
from app.pipeline.image_header import DecodeLimits
from app.pipeline.prepare import prepare_digit
from digits.contract import to_model_input
from digits.model import DigitModel
from testkit.images import encode_jpeg, encode_png
from testkit.photo_like import render_photo_like

pytestmark = pytest.mark.integration

MIN_CORRECT = 37  # of 40
PHOTO_SEED = 20240611


def png_uploads(mnist_test_samples, sample_indices) -> list[bytes]:
    images, _ = mnist_test_samples
    return [encode_png(images[index]) for index in sample_indices]


def photo_uploads(mnist_test_samples, sample_indices) -> list[bytes]:
    images, _ = mnist_test_samples
    return [
        encode_jpeg(render_photo_like(images[index], np.random.default_rng(PHOTO_SEED + int(index))))
        for index in sample_indices
    ]


def direct_predictions(models_dir, uploads: list[bytes]) -> np.ndarray:
    """The model's own probabilities on the canonical digits that the pipeline makes of `uploads`."""
    model = DigitModel.load(models_dir)
    canonical = [prepare_digit(data, DecodeLimits()).canonical for data in uploads]
    return model.predict_batch(np.stack([to_model_input(digit) for digit in canonical]))


def without_floats(answer: dict) -> dict:
    """An answer without its probabilities: the alternatives by digit only."""
    kept = {key: value for key, value in answer.items() if key not in ("probabilities", "confidence")}
    return {**kept, "alternatives": [alternative["digit"] for alternative in answer["alternatives"]]}


async def post_each(client, uploads: list[bytes]) -> list[dict]:
    responses = await asyncio.gather(
        *(client.post("/predict", files={"file": (f"{i}.img", data)}) for i, data in enumerate(uploads))
    )
    assert [response.status_code for response in responses] == [200] * len(uploads)
    return [response.json() for response in responses]


@pytest.mark.parametrize("make_uploads", [png_uploads, photo_uploads], ids=["png", "photo_jpeg"])
async def test_predict_reads_mnist_digits(
    service, models_dir, mnist_test_samples, sample_indices, make_uploads
):
    _, labels = mnist_test_samples
    uploads = make_uploads(mnist_test_samples, sample_indices)
    answers = await post_each(service.client, uploads)
    expected = direct_predictions(models_dir, uploads)
    assert [answer["digit"] for answer in answers] == expected.argmax(axis=1).tolist()
    np.testing.assert_allclose([answer["probabilities"] for answer in answers], expected, atol=1e-5)
    correct = sum(
        answer["digit"] == labels[index] for answer, index in zip(answers, sample_indices, strict=True)
    )
    assert correct >= MIN_CORRECT


async def test_predict_response_has_the_documented_fields(service, mnist_test_samples, sample_indices):
    [answer] = await post_each(service.client, png_uploads(mnist_test_samples, sample_indices[:1]))
    assert set(answer) == {
        "digit",
        "confidence",
        "probabilities",
        "unsure",
        "reason",
        "alternatives",
        "inverted",
        "model_version",
    }
    assert len(answer["probabilities"]) == 10 and sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    assert answer["confidence"] == max(answer["probabilities"])
    assert answer["model_version"] == "1"


async def test_predict_reports_polarity_flip_for_dark_ink_on_paper(
    service, mnist_test_samples, sample_indices
):
    indices = sample_indices[:4]
    pngs = await post_each(service.client, png_uploads(mnist_test_samples, indices))
    photos = await post_each(service.client, photo_uploads(mnist_test_samples, indices))
    assert [answer["inverted"] for answer in pngs] == [False] * 4
    assert [answer["inverted"] for answer in photos] == [True] * 4


async def test_batch_answers_in_upload_order_with_errors_at_their_index(
    service, mnist_test_samples, sample_indices
):
    uploads = png_uploads(mnist_test_samples, sample_indices[:6])
    uploads[2] = b"\x00\x01\x02 not an image at all"
    uploads[4] = encode_png(np.full((40, 40), 255, dtype=np.uint8))  # blank paper
    singles = await post_each(service.client, [data for i, data in enumerate(uploads) if i not in (2, 4)])
    response = await service.client.post(
        "/predict/batch", files=[("files", (f"{i}.png", data)) for i, data in enumerate(uploads)]
    )
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 6
    assert predictions[2] == {
        "filename": "2.png",
        "status_code": 400,
        "error": {"code": "undecodable_image", "detail": predictions[2]["error"]["detail"]},
    }
    assert predictions[4]["status_code"] == 422 and predictions[4]["error"]["code"] == "no_digit_found"
    # Same digits and flags as the single requests, plus each file's name; probabilities equal up to
    # float round-off, since the model's kernels sum in a different order for a different batch size.
    batched = [predictions[i] for i in (0, 1, 3, 5)]
    assert [without_floats(answer) for answer in batched] == [
        {**without_floats(answer), "filename": f"{i}.png"}
        for i, answer in zip((0, 1, 3, 5), singles, strict=True)
    ]
    np.testing.assert_allclose(
        [answer["probabilities"] for answer in batched],
        [answer["probabilities"] for answer in singles],
        atol=1e-5,
    )


async def test_batch_answers_name_each_file_as_uploaded_successes_and_errors_alike(
    service, mnist_test_samples, sample_indices
):
    [digit] = png_uploads(mnist_test_samples, sample_indices[:1])
    # Names repeat, hold spaces and non-ASCII letters: each comes back as sent, at its file's index.
    names = ["scan 1.png", "scan 1.png", "empty.png", "Zahl-ä.png"]
    uploads = [digit, digit, b"", digit]
    files = [("files", (name, data)) for name, data in zip(names, uploads, strict=True)]
    response = await service.client.post("/predict/batch", files=files)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [item["filename"] for item in predictions] == names
    assert predictions[2]["error"]["code"] == "empty_file"
    assert all("digit" in predictions[i] for i in (0, 1, 3))


async def test_single_and_batch_requests_share_model_calls(service, mnist_test_samples, sample_indices):
    uploads = png_uploads(mnist_test_samples, sample_indices[:16])
    batch_request = service.client.post(
        "/predict/batch", files=[("files", (f"{i}.png", d)) for i, d in enumerate(uploads)]
    )
    batch_response, *single_answers = await asyncio.gather(
        batch_request, *(service.client.post("/predict", files={"file": ("x.png", d)}) for d in uploads)
    )
    batch_digits = [item["digit"] for item in batch_response.json()["predictions"]]
    assert batch_digits == [response.json()["digit"] for response in single_answers]
    assert service.sample("digitserve_batch_size_count") < 32


async def test_preprocess_returns_the_28x28_png_the_model_sees(service, mnist_test_samples, sample_indices):
    images, _ = mnist_test_samples
    [photo] = photo_uploads(mnist_test_samples, sample_indices[:1])
    response = await service.client.post("/preprocess", files={"file": ("photo.jpg", photo, "image/jpeg")})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-digit-inverted"] == "true"
    seen = decode_image(response.content)
    assert seen.shape == (28, 28)
    np.testing.assert_array_equal(seen, prepare_digit(photo, DecodeLimits()).canonical)
    # The photo's digit comes back close to the MNIST original it was rendered from.
    original = images[sample_indices[0]].astype(np.float32)
    correlation = np.corrcoef(seen.astype(np.float32).ravel(), original.ravel())[0, 1]
    assert correlation > 0.6
