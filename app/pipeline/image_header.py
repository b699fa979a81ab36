"""Upload bytes -> `ImageHeader` (format, size, the memory decoding will take), from the header alone.

What an upload will cost is known before a pixel is decoded, and refused there: more pixels than
allowed, an absurd aspect ratio, more memory than one upload may take (its bytes per pixel, the
decoder's own buffers and the copies the conversion to grayscale makes), a JPEG of too many scans.
Reading a header costs microseconds (Pillow's `Image.open` is lazy); a JPEG's scans are counted in
one vectorized pass over the file. The admission layer asks `inspect_image` to size an upload before
queueing it; `decode_image` asks it before decoding.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from app.pipeline import decoder_memory
from app.pipeline.header_pieces import check_header_pieces
from app.pipeline.image_format import sniff_image_format
from app.pipeline.jpeg_frame import JpegFrame, read_jpeg_frame
from app.pipeline.jpeg_scans import count_jpeg_scans_at_most, read_jpeg_scans
from app.pipeline.preprocess import MAX_WORKING_SIDE_PIXELS
from digits.errors import EmptyUploadError, ImageTooElongatedError, ImageTooLargeError, UndecodableImageError

MEBIBYTE_BYTES = 1024 * 1024
_JPEG_SCALE_DENOMINATORS = (8, 4, 2)  # libjpeg's DCT scaling: 1/8, 1/4, 1/2 of each side
_PLAIN_MODE_NAMES = {"1": "1-bit", "L": "8-bit grey", "LA": "grey with alpha", "P": "palette"}
_PLAIN_MODE_NAMES |= {"PA": "palette with alpha", "RGB": "RGB", "RGBA": "RGB with alpha"}
_PLAIN_MODE_NAMES |= {"CMYK": "CMYK", "I": "32-bit integer", "F": "32-bit floating-point"}


class DecodeSettings(Protocol):
    """The settings that limit decoding: `app.settings.Settings` has them (the pipeline never imports it)."""

    image_max_pixels: int
    image_max_decoded_bytes: int
    image_max_aspect_ratio: float
    jpeg_max_scans: int


@dataclass(frozen=True)
class DecodeLimits:
    """What one upload may ask of the decoder, checked from its header before a pixel is decoded.

    Attributes:
        max_pixels: most pixels (width x height) of the stored image.
        max_decoded_bytes: most bytes decoding and the conversion to grayscale may hold at once.
        max_aspect_ratio: longest side over shortest side (a 1 x 40,000,000 strip is no digit).
        jpeg_max_scans: most scans a JPEG may hold; a progressive JPEG's decoder passes over the
            whole image once per scan.
    """

    max_pixels: int = 40_000_000
    max_decoded_bytes: int = 128 * MEBIBYTE_BYTES
    max_aspect_ratio: float = 32.0
    jpeg_max_scans: int = 24

    @classmethod
    def from_settings(cls, settings: DecodeSettings) -> DecodeLimits:
        """The limits the service's settings (`image_max_pixels`...) give."""
        return cls(
            max_pixels=settings.image_max_pixels,
            max_decoded_bytes=settings.image_max_decoded_bytes,
            max_aspect_ratio=settings.image_max_aspect_ratio,
            jpeg_max_scans=settings.jpeg_max_scans,
        )


@dataclass(frozen=True)
class ImageHeader:
    """What the header of an accepted upload says, and what decoding it will take.

    Attributes:
        image_format: the Pillow format that decodes it ("PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP").
        width_pixels: stored width.
        height_pixels: stored height.
        decoded_bytes: most bytes decoding and converting it to grayscale will hold at once (an
            estimate from the header, measured within 0.3 MB to 19% over; see `decoder_memory`).
        scale_denominator: a JPEG is decoded at 1/scale_denominator of each side (DCT scaling,
            never below `MAX_WORKING_SIDE_PIXELS` on the longer side, or below the first look's
            size for a one-pass JPEG read for one: `jpeg_scale_denominator`); 1 for other formats.
        jpeg_frame: the JPEG's frame header, for the decoder's scan checks; None for other formats.
    """

    image_format: str
    width_pixels: int
    height_pixels: int
    decoded_bytes: int
    scale_denominator: int = 1
    jpeg_frame: JpegFrame | None = None

    @property
    def decoded_size(self) -> tuple[int, int]:
        """(width, height) of the decoded image, after any DCT scaling."""
        return (
            math.ceil(self.width_pixels / self.scale_denominator),
            math.ceil(self.height_pixels / self.scale_denominator),
        )


def jpeg_scale_denominator(
    width_pixels: int, height_pixels: int, min_longer_side_pixels: int = MAX_WORKING_SIDE_PIXELS
) -> int:
    """The largest DCT scaling (8, 4, 2, else 1) that keeps the longer side at `min_longer_side_pixels`
    (the working size) or more.

    Preprocessing shrinks anything larger anyway; libjpeg then computes 1/4 or 1/64 of the pixels.
    """
    longer, shorter = max(width_pixels, height_pixels), min(width_pixels, height_pixels)
    for denominator in _JPEG_SCALE_DENOMINATORS:
        # `shorter >= denominator`: Pillow picks the scale from the shorter side's quotient too
        if longer // denominator >= min_longer_side_pixels and shorter >= denominator:
            return denominator
    return 1


def _check_size(size: tuple[int, int], limits: DecodeLimits) -> None:
    """Refuses too many pixels (413) and an absurd aspect ratio (422), before anything is allocated."""
    width, height = size
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} = {width * height:,} pixels; the limit is {limits.max_pixels:,}"
        )
    if width == 0 or height == 0:
        raise UndecodableImageError(f"the image header gives a size of {width}x{height} pixels")
    if max(width, height) > limits.max_aspect_ratio * min(width, height):
        raise ImageTooElongatedError(
            f"the image is {width}x{height} pixels: one side is more than {limits.max_aspect_ratio:g} "
            "times the other, too thin to hold a digit; crop it to the digit"
        )


def open_image(data: bytes, image_format: str) -> Image.Image:
    """Pillow's lazy open (the header only), with the one plugin of the sniffed format.

    Raises:
        ImageTooLargeError: past Pillow's own pixel cap (twice `Image.MAX_IMAGE_PIXELS`).
        UndecodableImageError: the header does not parse.
    """
    try:
        return Image.open(io.BytesIO(data), formats=[image_format])
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError("the image has more pixels than the decoder ever reads") from error
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, struct.error...
        raise UndecodableImageError(
            f"the file starts like a {display_name(image_format)} image, but its header is damaged"
        ) from error


def display_name(image_format: str) -> str:
    """The format's name as people write it ("WebP", not Pillow's "WEBP")."""
    return "WebP" if image_format == "WEBP" else image_format


def _check_decoded_bytes(
    decoded_bytes: int, image_format: str, size: tuple[int, int], mode: str, limits: DecodeLimits
) -> None:
    if decoded_bytes > limits.max_decoded_bytes:
        kind = _PLAIN_MODE_NAMES.get(mode, "16-bit grey" if mode.startswith("I;16") else "colour")
        raise ImageTooLargeError(
            f"decoding this {size[0]}x{size[1]} {kind} {display_name(image_format)} image would take "
            f"about {math.ceil(decoded_bytes / MEBIBYTE_BYTES):,} MiB of memory; the limit is "
            f"{limits.max_decoded_bytes / MEBIBYTE_BYTES:g} MiB"
        )


def _inspect_jpeg(
    data: bytes, frame: JpegFrame, image: Image.Image, limits: DecodeLimits, min_longer_side_pixels: int
) -> ImageHeader:
    """The scan checks and memory estimate of a JPEG, decoded at reduced size and straight to grey."""
    scan_count = count_jpeg_scans_at_most(data, frame)
    if scan_count > limits.jpeg_max_scans:
        read_jpeg_scans(data, frame, limits.jpeg_max_scans)  # counts exactly; raises past the limit
    if not frame.is_read_in_one_pass(scan_count):
        # Truncation shows in a multi-scan file's decode only where its missing refinements change the
        # pixels; at 1/8 (DC coefficients alone) they change nothing (`decode._decode_checked_jpeg`).
        min_longer_side_pixels = max(min_longer_side_pixels, MAX_WORKING_SIDE_PIXELS)
    scale = jpeg_scale_denominator(*image.size, min_longer_side_pixels)
    decoded_size = (math.ceil(image.width / scale), math.ceil(image.height / scale))
    mode = "L" if image.mode in ("L", "RGB") else image.mode  # CMYK has no direct path to grey
    working, held = decoder_memory.jpeg_buffer_bytes(frame, scan_count, len(data), decoded_size)
    decoded_bytes = decoder_memory.estimate_decoded_bytes(mode, False, decoded_size, working, held)
    _check_decoded_bytes(decoded_bytes, "JPEG", image.size, mode, limits)
    return ImageHeader("JPEG", image.width, image.height, decoded_bytes, scale, frame)


def _inspect_opened(data: bytes, image: Image.Image, image_format: str, limits: DecodeLimits) -> ImageHeader:
    """The size and memory checks of an image other than a JPEG, opened by Pillow; its header."""
    _check_size(image.size, limits)
    held = decoder_memory.webp_canvas_bytes(image.size) if image_format == "WEBP" else 0
    working = decoder_memory.working_bytes(image_format, image, data)
    decoded_bytes = decoder_memory.estimate_decoded_bytes(
        image.mode, image.has_transparency_data, image.size, working, held
    )
    _check_decoded_bytes(decoded_bytes, image_format, image.size, image.mode, limits)
    return ImageHeader(image_format, image.width, image.height, decoded_bytes)


def open_inspected_image(
    data: bytes, limits: DecodeLimits, min_longer_side_pixels: int = MAX_WORKING_SIDE_PIXELS
) -> tuple[ImageHeader, Image.Image]:
    """`inspect_image`, keeping the image Pillow opened (header read, no pixel decoded) for decoding.

    `min_longer_side_pixels`: what a JPEG's DCT scaling must leave of its longer side
    (`jpeg_scale_denominator`). The caller closes the image. Raises what `inspect_image` raises.
    """
    if not data:
        raise EmptyUploadError("the uploaded file is empty")
    image_format = sniff_image_format(data)
    check_header_pieces(data, image_format)
    frame = read_jpeg_frame(data) if image_format == "JPEG" else None
    if frame is not None:
        _check_size((frame.width_pixels, frame.height_pixels), limits)
    if image_format == "WEBP":  # checked before Pillow's decoder allocates its canvases
        size = decoder_memory.read_webp_size(data)
        _check_size(size, limits)
        _check_decoded_bytes(decoder_memory.webp_canvas_bytes(size), image_format, size, "RGBA", limits)
    image = open_image(data, image_format)
    try:
        if frame is not None:
            return _inspect_jpeg(data, frame, image, limits, min_longer_side_pixels), image
        return _inspect_opened(data, image, image_format, limits), image
    except BaseException:
        image.close()
        raise


def inspect_image(data: bytes, limits: DecodeLimits) -> ImageHeader:
    """Upload bytes -> what the header says and what decoding will take; refuses what it must not do.

    Cheap: no pixel is decoded (microseconds, plus about 1 ms per 10 MB of JPEG to bound its scans).

    Raises:
        EmptyUploadError: `data` is empty.
        UnsupportedImageTypeError: not one of PNG, JPEG, BMP, WebP, TIFF, GIF.
        UndecodableImageError: a damaged header.
        ImageTooLargeError: more pixels than `limits.max_pixels`, or more memory than
            `limits.max_decoded_bytes` to decode.
        ImageTooElongatedError: one side over `limits.max_aspect_ratio` times the other.
        ImageTooComplexError: a JPEG of more than `limits.jpeg_max_scans` scans; a header of more
            pieces than a real image's (`header_pieces`, `jpeg_frame`), which Pillow would read slowly.
    """
    header, image = open_inspected_image(data, limits)
    image.close()
    return header
