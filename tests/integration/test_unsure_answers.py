"""Every answer, single or in a batch, says whether it is sure, why not, and the three likeliest digits;
the probabilities are those of the model card's calibration; the threshold is the setting's, else the
card's; a malformed calibration stops the start-up, and a blank image stays a 422."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from digits.calibration import Calibration
from digits.errors import ModelLoadError
from digits.model_store import read_model_card, write_model_card
from testkit.images import encode_png
from tests.integration.conftest import STARTUP_TIMEOUT_SECONDS, run_service
from tests.integration.test_predict import direct_predictions, png_uploads, post_each

pytestmark = pytest.mark.integration

TEMPERATURE = 2.0


@pytest.fixture
def calibrated_models_dir(models_dir: Path, tmp_path: Path) -> Path:
    """The fixture model, its card holding a calibration (temperature 2, minimum confidence 0.6)."""
    copy = tmp_path / "digits"
    shutil.copytree(models_dir, copy)
    card = read_model_card(copy / "1")
    write_model_card(copy / "1", {**card, "calibration": Calibration(TEMPERATURE, 0.6).to_card()})
    return copy


def assert_consistent(answer: dict) -> None:
    """The alternatives are the likeliest digits, most probable first, and `unsure` goes with `reason`."""
    probabilities = np.array(answer["probabilities"])
    expected_order = np.argsort(-probabilities, kind="stable")[:3].tolist()
    assert [alternative["digit"] for alternative in answer["alternatives"]] == expected_order
    assert [alternative["probability"] for alternative in answer["alternatives"]] == probabilities[
        expected_order
    ].tolist()
    assert answer["digit"] == expected_order[0] and answer["confidence"] == probabilities.max()
    assert answer["unsure"] is (answer["reason"] is not None)


async def test_answers_carry_unsure_reason_and_alternatives_single_and_batch(
    service, mnist_test_samples, sample_indices
):
    uploads = png_uploads(mnist_test_samples, sample_indices[:8])
    singles = await post_each(service.client, uploads)
    response = await service.client.post(
        "/predict/batch", files=[("files", (f"{i}.png", data)) for i, data in enumerate(uploads)]
    )
    batched = response.json()["predictions"]
    for answer in [*singles, *batched]:
        assert_consistent(answer)
    # The fixture model is uncalibrated (no card section): the fallback threshold, 0.9, decides.
    assert [answer["unsure"] for answer in singles] == [answer["confidence"] < 0.9 for answer in singles]
    assert [answer["unsure"] for answer in batched] == [answer["unsure"] for answer in singles]


async def test_the_probabilities_returned_are_the_calibrated_ones(
    make_settings, calibrated_models_dir, mnist_test_samples, sample_indices
):
    uploads = png_uploads(mnist_test_samples, sample_indices[:6])
    raw = direct_predictions(calibrated_models_dir, uploads)
    async with run_service(make_settings(model_dir=calibrated_models_dir)) as running:
        answers = await post_each(running.client, uploads)
    calibrated = Calibration(TEMPERATURE).apply(raw)
    np.testing.assert_allclose([answer["probabilities"] for answer in answers], calibrated, atol=1e-5)
    assert [answer["digit"] for answer in answers] == raw.argmax(axis=1).tolist()
    # The card's threshold (0.6) decides when no setting overrides it.
    assert [answer["unsure"] for answer in answers] == [bool(row.max() < 0.6) for row in calibrated]
    for answer in answers:
        assert_consistent(answer)


async def test_the_setting_overrides_the_cards_threshold(
    make_settings, calibrated_models_dir, mnist_test_samples, sample_indices
):
    uploads = png_uploads(mnist_test_samples, sample_indices[:6])
    settings = make_settings(model_dir=calibrated_models_dir, min_confidence=1.0)
    async with run_service(settings) as running:
        answers = await post_each(running.client, uploads)
        assert running.state.answer_policy.min_confidence == 1.0
        unsure_count = running.sample("digitserve_unsure_predictions_total", {"reason": "low_confidence"})
        unsure_count += running.sample("digitserve_unsure_predictions_total", {"reason": "not_a_digit"})
    # At temperature 2 no answer reaches a confidence of 1: all go to a person, and are counted.
    assert all(answer["unsure"] for answer in answers)
    assert {answer["reason"] for answer in answers} <= {"low_confidence", "not_a_digit"}
    assert unsure_count == len(answers)


async def test_a_malformed_calibration_stops_the_start_up(make_settings, models_dir, tmp_path):
    copy = tmp_path / "digits"
    shutil.copytree(models_dir, copy)
    card_path = copy / "1" / "model_card.json"
    card_path.write_text(
        json.dumps({**json.loads(card_path.read_text()), "calibration": {"temperature": -1}})
    )
    app = create_app(make_settings(model_dir=copy))
    with pytest.raises(ModelLoadError, match="calibration section is malformed"):
        async with LifespanManager(app, startup_timeout=STARTUP_TIMEOUT_SECONDS):
            pass


async def test_a_blank_image_stays_no_digit_found_not_an_unsure_answer(service):
    response = await service.client.post(
        "/predict", files={"file": ("blank.png", encode_png(np.full((64, 64), 255, np.uint8)))}
    )
    assert response.status_code == 422 and response.json()["code"] == "no_digit_found"


def test_a_threshold_outside_zero_to_one_stops_python_m_app_naming_the_variable():
    environment = {**os.environ, "DIGITSERVE_MIN_CONFIDENCE": "1.2"}
    result = subprocess.run(
        [sys.executable, "-m", "app"], env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "DIGITSERVE_MIN_CONFIDENCE=1.2: Input should be less than or equal to 1" in result.stderr
    assert "Traceback" not in result.stderr
