"""Images -> digits and numbers in this process, through the service's own stages and model, with no
service running: `digitserve predict --local`, `digitserve read --local`.

The same decode and preprocess (or segmentation), the same SavedModel loader, the model card's
calibration and threshold (`DIGITSERVE_MIN_CONFIDENCE` overrides it, as for the service), and the same
choice of a number's reading: the answers are the service's. An image the service would refuse
becomes an `ImageError` with the code and status the service would answer. Loading the model imports
TensorFlow (seconds), which is why this module is imported only for `--local`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from app.api.errors import http_status
from app.pipeline import prepare
from app.pipeline.image_header import DecodeLimits
from app.pipeline.postprocess import AnswerPolicy
from app.pipeline.postprocess import Prediction as JudgedDigit
from app.pipeline.preprocess import PreprocessedDigit
from app.pipeline.read_choice import NumberLooks, NumberReading, choose_reading
from app.pipeline.segment import SegmentedNumber
from app.settings import Settings
from digits.calibration import Calibration
from digits.contract import NUM_CLASSES, to_model_input
from digits.errors import DigitServeError
from digits.model import DigitModel
from digitserve.client import DEFAULT_BATCH_SIZE, batched
from digitserve.exchange import Image, Upload, to_upload
from digitserve.results import Alternative, Box, ImageError, Prediction, ReadDigit, Reading


def _alternatives(judged: JudgedDigit) -> tuple[Alternative, ...]:
    return tuple(
        Alternative(alternative.digit, alternative.probability) for alternative in judged.alternatives
    )


def _image_error(label: str | None, error: DigitServeError) -> ImageError:
    return ImageError(label, http_status(error), error.code, error.detail)


class LocalReader:
    """Reads images with the model of `settings.model_dir`, in this process.

    Args:
        settings: the service's settings: the model folder and version, the minimum confidence, the
            decode limits and the most digits of a number.

    Raises:
        ModelLoadError: no model where the settings point, or a malformed card.
    """

    def __init__(self, settings: Settings) -> None:
        self.model = DigitModel.load(settings.model_dir, settings.model_version)
        self.policy = AnswerPolicy.for_model(Calibration.from_card(self.model.card), settings.min_confidence)
        self.limits = DecodeLimits.from_settings(settings)
        self.read_max_digits = settings.read_max_digits

    def iter_predictions(
        self, images: Iterable[Image], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[Prediction | ImageError]:
        """Reads the digit in each image, `batch_size` images per model call, in the images' order."""
        for batch in batched(images, batch_size):
            yield from self._predict_batch([to_upload(image) for image in batch])

    def iter_readings(
        self, images: Iterable[Image], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[Reading | ImageError]:
        """Reads the number in each image; the cut-outs of a batch's images in one model call a look."""
        for batch in batched(images, batch_size):
            yield from self._read_batch([to_upload(image) for image in batch])

    def _predict_batch(self, uploads: list[Upload]) -> list[Prediction | ImageError]:
        outcomes: list[PreprocessedDigit | ImageError] = []
        for upload in uploads:
            try:
                outcomes.append(prepare.prepare_digit(upload.data, self.limits))
            except DigitServeError as error:
                outcomes.append(_image_error(upload.label, error))
        digits = [outcome for outcome in outcomes if isinstance(outcome, PreprocessedDigit)]
        rows = iter(self._call_model([to_model_input(digit.canonical) for digit in digits]))
        results: list[Prediction | ImageError] = []
        for upload, outcome in zip(uploads, outcomes, strict=True):
            if isinstance(outcome, ImageError):
                results.append(outcome)
                continue
            judged = self.policy.judge(next(rows), outcome.digit_parts)
            results.append(
                Prediction(
                    file=upload.label,
                    digit=judged.digit,
                    confidence=judged.confidence,
                    probabilities=judged.probabilities,
                    unsure=judged.unsure,
                    reason=None if judged.reason is None else str(judged.reason),
                    alternatives=_alternatives(judged),
                    inverted=outcome.is_inverted,
                    model_version=self.model.version,
                )
            )
        return results

    def _read_batch(self, uploads: list[Upload]) -> list[Reading | ImageError]:
        outcomes: list[SegmentedNumber | ImageError] = []
        for upload in uploads:
            try:
                outcomes.append(prepare.prepare_number(upload.data, self.limits, self.read_max_digits))
            except DigitServeError as error:
                outcomes.append(_image_error(upload.label, error))
        numbers = [outcome for outcome in outcomes if isinstance(outcome, SegmentedNumber)]
        looks = NumberLooks(numbers)
        while inputs := looks.next_inputs():
            looks.take(self._call_model(inputs))
        rows_by_number = iter(looks.rows)
        results: list[Reading | ImageError] = []
        for upload, outcome in zip(uploads, outcomes, strict=True):
            if isinstance(outcome, ImageError):
                results.append(outcome)
                continue
            try:
                reading = choose_reading(outcome, next(rows_by_number), self.policy, self.read_max_digits)
            except DigitServeError as error:  # too_many_digits
                results.append(_image_error(upload.label, error))
                continue
            results.append(self._to_reading(upload.label, outcome, reading))
        return results

    def _to_reading(self, label: str | None, number: SegmentedNumber, reading: NumberReading) -> Reading:
        digits = tuple(
            ReadDigit(
                digit=digit.prediction.digit,
                confidence=digit.prediction.confidence,
                unsure=digit.prediction.unsure,
                reason=None if digit.prediction.reason is None else str(digit.prediction.reason),
                alternatives=_alternatives(digit.prediction),
                box=Box(*digit.candidate.box),
            )
            for digit in reading.digits
        )
        return Reading(
            file=label,
            text=reading.text,
            digits=digits,
            unsure=reading.unsure,
            reason=None if reading.reason is None else str(reading.reason),
            inverted=number.is_inverted,
            model_version=self.model.version,
        )

    def _call_model(self, model_inputs: list[np.ndarray]) -> np.ndarray:
        if not model_inputs:
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        return self.model.predict_batch(np.stack(model_inputs))
