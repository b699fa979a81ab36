"""The first MNIST test digits -> the benchmark's upload pools and ready-made `POST /predict` requests.

Two kinds of upload, of the same 64 digits: "png28", the 28x28 MNIST image as a PNG, and "jpeg300",
a ~300x300 photo-like JPEG of it (`testkit.photo_like`), what a phone sends.
"""

from __future__ import annotations

import numpy as np

from testkit.http_load import build_multipart_request
from testkit.images import encode_jpeg, encode_png
from testkit.photo_like import render_photo_like
from testkit.server import LOOPBACK_HOST
from testkit.shared_data import read_mnist

PAYLOAD_POOL_SIZE = 64
PHOTO_SEED = 7


def build_payloads() -> dict[str, list[bytes]]:
    """Per payload kind ("png28", "jpeg300"): PAYLOAD_POOL_SIZE uploads of the first MNIST test digits."""
    images, _ = read_mnist()
    digits = images[:PAYLOAD_POOL_SIZE]
    rng = np.random.default_rng(PHOTO_SEED)
    return {
        "png28": [encode_png(digit) for digit in digits],
        "jpeg300": [encode_jpeg(render_photo_like(digit, rng, size_pixels=300)) for digit in digits],
    }


def mixed_predict_requests(port: int, repeats: int = 1) -> list[bytes]:
    """`POST /predict` requests alternating MNIST PNGs and photo-like JPEGs, the pool `repeats` times."""
    payloads = build_payloads()
    host = f"{LOOPBACK_HOST}:{port}"
    pool = []
    for png, jpeg in zip(payloads["png28"], payloads["jpeg300"], strict=True):
        pool.append(build_multipart_request(host, "/predict", "file", "digit.png", png))
        pool.append(build_multipart_request(host, "/predict", "file", "photo.jpg", jpeg))
    return pool * repeats
