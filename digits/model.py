"""Images (N, 28, 28, 1) float32 in [0, 1] -> probabilities (N, 10) float32, by a TF SavedModel.

The one loader of exported models: the service serves through it and `training.evaluate` scores
through it, so the figures in a model card are those of the artefact that is served. The only module
of the service that imports TensorFlow. Each version folder (`digits.model_store`) is a SavedModel
exported by Keras 3 `model.export(format="tf_saved_model")` with a `serve` endpoint. The service calls
`predict_batch` from the batcher's worker thread, one call at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from digits.contract import IMAGE_SHAPE, NUM_CLASSES
from digits.errors import ModelError, ModelLoadError
from digits.model_store import hash_saved_model, is_smoke_test, read_model_card, resolve_version_dir

logger = logging.getLogger(__name__)

SERVE_ENDPOINT_NAME = "serve"


def configure_thread_pools(intra_op_threads: int, inter_op_threads: int) -> None:
    """Sizes TensorFlow's CPU thread pools for this process; 0 keeps TensorFlow's choice (one per core).

    Args:
        intra_op_threads: threads that split one operation (a convolution) between them.
        inter_op_threads: threads that run independent operations of a graph at the same time.

    TensorFlow accepts sizes only before its runtime starts (the first model load or operation).
    Later, the sizes in place stay and a differing request is logged: a second app started in the
    same process (tests do this) runs with the pools of the first.
    """
    threading = tf.config.threading
    in_place = (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads())
    if in_place == (intra_op_threads, inter_op_threads):
        return
    try:
        threading.set_intra_op_parallelism_threads(intra_op_threads)
        threading.set_inter_op_parallelism_threads(inter_op_threads)
    except RuntimeError:
        fields = {"intra_op_threads": in_place[0], "inter_op_threads": in_place[1]}
        logger.warning("TensorFlow already runs; its thread pools keep their sizes", extra={"fields": fields})


class DigitModel:
    """A loaded digit classifier and its identity.

    Attributes:
        version: the version folder's name, sent with every prediction.
        sha256: sha256 of `saved_model.pb`, to tell two exports of one version apart.
        card: the parsed `model_card.json` (empty when the file is absent).
    """

    def __init__(
        self, serve_fn: Any, version: str, sha256: str, card: dict[str, Any], *, owner: Any = None
    ) -> None:
        self._serve_fn = serve_fn
        # The restored SavedModel object owns the endpoint's variables; it must outlive the endpoint.
        self._owner = owner
        self.version = version
        self.sha256 = sha256
        self.card = card

    @property
    def is_smoke_test(self) -> bool:
        """Whether the card marks a smoke-test model (`training.run --quick`), never fit to serve."""
        return is_smoke_test(self.card)

    @classmethod
    def load(cls, model_dir: Path, version: str | None = None) -> DigitModel:
        """Loads a SavedModel version folder.

        Args:
            model_dir: folder of integer version folders, or one version folder.
            version: the version to load; None loads the highest.

        Returns:
            The loaded model (not warmed up yet).

        Raises:
            ModelLoadError: missing folder or files, or no `serve` endpoint with an input signature.
        """
        version_dir = resolve_version_dir(model_dir, version)
        try:
            loaded = tf.saved_model.load(str(version_dir))
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise ModelLoadError(f"cannot load the SavedModel in {version_dir}: {error}") from error
        endpoint = getattr(loaded, SERVE_ENDPOINT_NAME, None)
        if endpoint is None:
            raise ModelLoadError(f"the SavedModel in {version_dir} has no `{SERVE_ENDPOINT_NAME}` endpoint")
        try:
            # The endpoint's one traced graph, called directly: the restored function would look up
            # the trace matching its arguments on every call, 0.1 ms of Python (GIL held) per call.
            serve_fn = endpoint.get_concrete_function()
        except (ValueError, TypeError) as error:
            raise ModelLoadError(
                f"the `{SERVE_ENDPOINT_NAME}` endpoint in {version_dir} has no input signature: {error}"
            ) from error
        model = cls(
            serve_fn,
            version_dir.name,
            hash_saved_model(version_dir),
            read_model_card(version_dir),
            owner=loaded,
        )
        logger.info("model loaded", extra={"fields": {"path": version_dir, "sha256": model.sha256[:12]}})
        return model

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        """Classifies a batch.

        Args:
            images: (N, 28, 28, 1) float32 in [0, 1], white ink on black, MNIST-normalized.

        Returns:
            (N, 10) float32 probabilities, each row summing to 1.

        Raises:
            ModelError: wrong input shape, a TensorFlow failure, or an output of the wrong shape.
        """
        if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
            raise ModelError(f"expected images of shape (N, 28, 28, 1), got {images.shape}")
        try:
            probabilities = np.asarray(self._serve_fn(tf.constant(images, dtype=tf.float32)))
        except (tf.errors.OpError, ValueError, TypeError) as error:
            raise ModelError(f"the model call failed: {error}") from error
        if probabilities.shape != (len(images), NUM_CLASSES):
            raise ModelError(f"expected ({len(images)}, {NUM_CLASSES}) outputs, got {probabilities.shape}")
        return probabilities.astype(np.float32, copy=False)

    def warm_up(self, batch_sizes: Iterable[int]) -> None:
        """Runs blank batches so that the first real requests do not pay for graph and kernel set-up.

        Args:
            batch_sizes: the batch sizes to run once each, e.g. (1, batch_max_size).

        Raises:
            ModelError: the model fails or answers with the wrong shape.
        """
        for batch_size in batch_sizes:
            self.predict_batch(np.zeros((batch_size, *IMAGE_SHAPE), dtype=np.float32))
        logger.info("model warmed up", extra={"fields": {"version": self.version}})
