"""Image arrays -> upload bytes: PNG and JPEG through OpenCV, any format and mode through Pillow.

OpenCV takes (H, W) grayscale or (H, W, 3) BGR uint8 arrays, as the service's decode stage returns
them; Pillow takes an `Image` in the mode to store (16-bit, palette, CMYK, multi-frame...).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image


def encode_with_opencv(image: np.ndarray, extension: str, parameters: list[int] | None = None) -> bytes:
    """(H, W) or (H, W, 3) BGR image -> file bytes of the format `extension` names (".png", ".tiff").

    Raises:
        ValueError: OpenCV could not encode the image in that format.
    """
    is_encoded, buffer = cv2.imencode(extension, image, parameters or [])
    if not is_encoded:
        raise ValueError(f"OpenCV could not encode an image of shape {image.shape} as {extension}")
    return buffer.tobytes()


def encode_png(image: np.ndarray) -> bytes:
    """(H, W) or (H, W, 3) BGR uint8 image -> PNG file bytes, as a client uploads a scanned digit."""
    return encode_with_opencv(image, ".png")


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """(H, W) or (H, W, 3) BGR uint8 image -> JPEG file bytes at the given quality (1-100)."""
    return encode_with_opencv(image, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality])


def encode_with_pillow(image: Image.Image, image_format: str, **options) -> bytes:
    """A Pillow image -> file bytes in `image_format` ("PNG", "GIF"...), with Pillow's save `options`."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()
