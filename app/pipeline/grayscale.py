"""Decoded Pillow image of any mode -> (H, W) uint8 luma in [0, 255], and the memory that conversion takes.

The conversion and its memory model live together: `decoder_memory` asks `conversion_peak_bytes` before a
pixel is decoded, to refuse an upload whose decoding would not fit its budget, and the answer is only
right while it describes what `to_grayscale` does. Each path keeps as few full-size copies as it can:
high bit depths are scaled one band of rows at a time, and alpha is composited by Pillow in place.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Pillow converts these to L in one step; other modes (CMYK, YCbCr, LAB...) go through RGB.
_DIRECT_TO_LUMA_MODES = frozenset({"1", "L", "P", "RGB"})
_ALPHA_MODES = frozenset({"LA", "RGBA"})  # modes with an alpha band that needs no conversion first
# Scaling a band of rows at a time keeps the float temporaries to a few megabytes.
_BAND_PIXELS = 1 << 18
_BAND_TEMPORARIES = 2  # float64 copies of one band alive at once while it is scaled
_ROW_POINTER_BYTES = 8


def _stored_bytes_per_pixel(mode: str) -> int:
    """1 for 1-bit, grey and palette, 2 for 16-bit grey, else 4 (RGB is padded, LA and PA take 4 too)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def image_bytes(mode: str, size: tuple[int, int]) -> int:
    """Bytes a Pillow image of `mode` and `size` takes: its pixels and a pointer per row (8 bytes, so
    a 1 x 40,000,000 strip holds 320 MB of pointers)."""
    width, height = size
    return width * height * _stored_bytes_per_pixel(mode) + height * _ROW_POINTER_BYTES


def is_high_bit_depth(mode: str) -> bool:
    """16-bit or 32-bit integer, or 32-bit float samples."""
    return mode in ("I", "F") or mode.startswith("I;16")


def conversion_peak_bytes(mode: str, has_transparency: bool, size: tuple[int, int]) -> int:
    """Most bytes `to_grayscale` holds at once besides the decoded image itself (an upper estimate).

    `np.asarray` of a Pillow image copies it through `tobytes`, whose chunks and joined result coexist
    for a moment: twice the bytes read out.
    """
    pixels, luma_bytes = size[0] * size[1], image_bytes("L", size)
    if is_high_bit_depth(mode):
        # the samples read out (twice, for a moment), then the uint8 result and one band's temporaries
        return 2 * _stored_bytes_per_pixel(mode) * pixels + _BAND_TEMPORARIES * 8 * min(pixels, _BAND_PIXELS)
    if has_transparency:
        rgba_bytes = 0 if mode in _ALPHA_MODES else image_bytes("RGBA", size)
        # the RGBA copy with its luma and alpha planes; then those planes and the white page
        return max(rgba_bytes + 2 * luma_bytes, 3 * luma_bytes)
    if mode == "L":
        return 2 * pixels
    if mode in _DIRECT_TO_LUMA_MODES:
        return luma_bytes + 2 * pixels
    return image_bytes("RGB", size) + luma_bytes  # an RGB copy and its luma


def _scale_high_bit_depth(image: Image.Image) -> np.ndarray:
    """16-bit and 32-bit integer samples are scaled from [0, 65535]; float samples from [0, 1]."""
    samples = np.asarray(image)
    if image.mode == "F":
        full_scale = 1.0 if samples.size and np.nanmax(samples) <= 1.0 else 255.0
    else:
        full_scale = 65535.0
    gray = np.empty(samples.shape, dtype=np.uint8)
    rows_per_band = max(1, _BAND_PIXELS // max(1, samples.shape[1]))
    for start in range(0, samples.shape[0], rows_per_band):
        band = samples[start : start + rows_per_band].astype(np.float64)
        band *= 255.0 / full_scale
        np.nan_to_num(band, copy=False, nan=0.0)
        gray[start : start + rows_per_band] = np.rint(np.clip(band, 0, 255, out=band))
    return gray


def _composite_on_white(image: Image.Image) -> np.ndarray:
    """Alpha blends luma onto white paper, as every viewer shows a transparent background.

    Pillow's masked paste rounds luma * a + 255 * (1 - a) to the nearest integer, as the blend is defined.
    """
    rgba = image if image.mode in _ALPHA_MODES else image.convert("RGBA")
    luma, alpha = rgba.convert("L"), rgba.getchannel("A")
    del rgba  # the RGBA copy (4 bytes a pixel) goes before the page is made
    page = Image.new("L", image.size, 255)
    page.paste(luma, mask=alpha)
    del luma, alpha
    return np.asarray(page)


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Decoded image of any mode -> (H, W) uint8 luma, transparent areas shown as white paper.

    Args:
        image: a loaded Pillow image.

    Returns:
        (H, W) uint8 in [0, 255] (ITU-R 601 luma for colour), possibly read-only.
    """
    if is_high_bit_depth(image.mode):
        return _scale_high_bit_depth(image)
    if image.has_transparency_data:
        return _composite_on_white(image)
    if image.mode == "L":
        return np.asarray(image)
    if image.mode not in _DIRECT_TO_LUMA_MODES:
        return np.asarray(image.convert("RGB").convert("L"))  # Pillow has no direct path to L for all
    return np.asarray(image.convert("L"))
