"""Upload bytes -> (H, W) uint8 grayscale image in [0, 255], C-contiguous, ink as the client drew it.

The first stage of the request path. It trusts nothing the client says: `inspect_image` sniffs the
format from the file's magic bytes (never its content type) and, from the header alone, refuses what
decoding would cost too much (pixels, aspect ratio, memory, JPEG scans); only then are pixels decoded.
Every decoder failure becomes a domain error (400, 413, 415 or 422) whose detail names the problem in
plain words, never a library's message. No other exception leaves this module, whatever the bytes.

Why Pillow for every format rather than `cv2.imdecode`: one parser reads both the header (`Image.open`
is lazy, so the size checks cost nothing) and the pixels, and it handles what real uploads contain:
EXIF orientation (phone photos), alpha channels and palettes with a transparent index (composited on
white, as every viewer shows them), 16-bit samples, CMYK JPEGs, and multi-frame GIF/TIFF/WebP (first
frame). `cv2.imdecode` ignores EXIF with IMREAD_UNCHANGED and drops alpha with IMREAD_GRAYSCALE, which
turns black ink on a transparent background into an all-black image.

JPEGs are decoded at reduced size (libjpeg's DCT scaling) and straight to grey, and are checked for
data that stops short: libjpeg fills a scan whose data runs out with grey and only warns, so a
truncated file with an end marker appended, or a header claiming a larger frame than its data, would
otherwise decode into a confident digit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image

from app.pipeline.grayscale import to_grayscale
from app.pipeline.image_header import (
    DecodeLimits,
    ImageHeader,
    display_name,
    jpeg_scale_denominator,
    open_image,
    open_inspected_image,
)
from app.pipeline.jpeg_frame import JpegFrame
from app.pipeline.jpeg_scans import read_jpeg_scans
from app.pipeline.preprocess import MAX_WORKING_SIDE_PIXELS
from digits.errors import DigitServeError, ImageTooLargeError, UndecodableImageError

DEFAULT_DECODE_LIMITS = DecodeLimits()
_EXIF_ORIENTATION_TAG = 0x0112
_END_OF_IMAGE = b"\xff\xd9"
# 0xFF00 is a stuffed 0xFF data byte: one-bits, which no Huffman code is made of (JPEG reserves them),
# so a decoder short of data reads them as the empty blocks it would have filled in anyway, and
# runs out again. 16 bytes cover libjpeg's read-ahead (57 bits) past a complete scan's last byte.
_ONE_BITS = b"\xff\x00" * 16
# Bits a decoder short of data reads into coefficients unlike its grey filling (no 0xFF among them).
_PATTERN_BITS = bytes((index * 73 + 29) % 251 for index in range(64))
# EXIF orientation -> the view of the stored pixels that shows them upright (as ImageOps.exif_transpose).
_UPRIGHT_VIEWS = {
    2: lambda pixels: pixels[:, ::-1],
    3: lambda pixels: pixels[::-1, ::-1],
    4: lambda pixels: pixels[::-1],
    5: lambda pixels: pixels.T,
    6: lambda pixels: np.rot90(pixels, -1),
    7: lambda pixels: pixels[::-1, ::-1].T,
    8: lambda pixels: np.rot90(pixels),
}


def _read_orientation(image: Image.Image) -> int:
    """The EXIF Orientation tag (1: as stored); a broken EXIF block should not cost the user the upload."""
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # any EXIF parsing failure means "orientation unknown"
        return 1


def _decode_opened(image: Image.Image, header: ImageHeader) -> tuple[np.ndarray, int]:
    """Decodes the first frame of an opened image -> ((H, W) uint8 grey as stored, its EXIF orientation)."""
    if header.image_format == "JPEG":
        width, height = image.size
        scale = header.scale_denominator
        image.draft("L", (width // scale, height // scale))  # YCbCr -> its Y plane; CMYK stays
    image.load()
    if image.size != header.decoded_size:  # the memory estimate holds for the announced size only
        raise UndecodableImageError("the image's pixel data does not match the size in its header")
    return to_grayscale(image), _read_orientation(image)


def _decode_pixels(data: bytes, header: ImageHeader) -> tuple[np.ndarray, int]:
    with open_image(data, header.image_format) as image:
        return _decode_opened(image, header)


def _insert_after_scans(data: bytes, scan_data_ends: tuple[int, ...], filler: bytes) -> bytes:
    view, pieces, start = memoryview(data), [], 0
    for end in scan_data_ends:
        pieces += [view[start:end], filler]
        start = end
    return b"".join([*pieces, view[start:]])


def _decode_checked_jpeg(
    data: bytes, header: ImageHeader, frame: JpegFrame, limits: DecodeLimits
) -> tuple[np.ndarray, int]:
    """Decodes a JPEG, refusing one whose scans stop short of their data (truncated or doctored).

    A one-pass decoder given no end marker finishes only if its scan's data was complete. A multi-scan
    file is buffered until its end marker, so it is decoded twice instead: bytes put after each scan's
    data are skipped when the scan is complete, and read into the image when it is not.
    """
    scans = read_jpeg_scans(data, frame, limits.jpeg_max_scans)
    if scans.is_read_in_one_pass:
        probe = b"".join([memoryview(data)[: scans.scan_data_ends[0]], _ONE_BITS])
        return _decode_pixels(probe, header)
    image_data = data[: scans.end_of_image_offset + len(_END_OF_IMAGE)]  # the file itself, if it ends there
    gray, orientation = _decode_pixels(image_data, header)
    probe = _insert_after_scans(image_data, scans.scan_data_ends, _PATTERN_BITS)
    if not np.array_equal(gray, _decode_pixels(probe, header)[0]):
        raise UndecodableImageError("the JPEG's image data stops short (the file is truncated or damaged)")
    return gray, orientation


@contextmanager
def _as_domain_errors(image_format: str) -> Iterator[None]:
    """Turns what a decoder raises into a domain error whose detail is plain words, never its message."""
    try:
        yield
    except DigitServeError:
        raise
    except MemoryError as error:
        raise ImageTooLargeError("the image is too large to decode in the memory available") from error
    except Exception as error:  # Pillow raises OSError, ValueError, SyntaxError, ...
        raise UndecodableImageError(
            f"the {display_name(image_format)} file is damaged or truncated: "
            "its image data could not be decoded"
        ) from error


def decode_image(
    data: bytes,
    limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
    *,
    max_image_pixels: int | None = None,
    min_longer_side_pixels: int = MAX_WORKING_SIDE_PIXELS,
) -> np.ndarray:
    """Upload bytes -> (H, W) uint8 grayscale, C-contiguous, upright, alpha composited on white.

    Args:
        data: the raw bytes of the uploaded file.
        limits: what decoding this upload may cost (see `DecodeLimits`).
        max_image_pixels: if given, replaces `limits.max_pixels` (for callers that set only that).
        min_longer_side_pixels: how small a JPEG's DCT scaling may make its longer side (the
            working size of `preprocess` unless the caller looks at less first).

    Returns:
        (H, W) uint8 in [0, 255]: the first frame, in the orientation its EXIF tag asks for. A large
        JPEG comes back reduced by 2, 4 or 8, its longer side still at least `min_longer_side_pixels`.

    Raises:
        EmptyUploadError: `data` is empty.
        UnsupportedImageTypeError: not one of PNG, JPEG, BMP, WebP, TIFF, GIF.
        ImageTooLargeError: over the pixel or the memory limit (or than the memory available).
        ImageTooElongatedError: one side over `limits.max_aspect_ratio` times the other.
        ImageTooComplexError: a JPEG of more scans than `limits.jpeg_max_scans`.
        UndecodableImageError: corrupt or truncated bytes; never a partially decoded image.
    """
    if max_image_pixels is not None:
        limits = dataclasses.replace(limits, max_pixels=max_image_pixels)
    return _decode(data, limits, min_longer_side_pixels)[0]


def decode_image_for_a_first_look(
    data: bytes, limits: DecodeLimits, min_longer_side_pixels: int
) -> tuple[np.ndarray, bool]:
    """`decode_image` with a JPEG's DCT scaling allowed down to `min_longer_side_pixels`, and whether it
    came out smaller than `decode_image` gives (so that a closer look must decode it again).

    Raises: what `decode_image` raises.
    """
    gray, header = _decode(data, limits, min_longer_side_pixels)
    return gray, header.scale_denominator > jpeg_scale_denominator(header.width_pixels, header.height_pixels)


def _decode(data: bytes, limits: DecodeLimits, min_longer_side_pixels: int) -> tuple[np.ndarray, ImageHeader]:
    header, image = open_inspected_image(data, limits, min_longer_side_pixels)
    with image, _as_domain_errors(header.image_format):
        if header.jpeg_frame is not None:
            gray, orientation = _decode_checked_jpeg(data, header, header.jpeg_frame, limits)
        else:
            gray, orientation = _decode_opened(image, header)
    upright_view = _UPRIGHT_VIEWS.get(orientation)
    return np.ascontiguousarray(upright_view(gray) if upright_view else gray), header
