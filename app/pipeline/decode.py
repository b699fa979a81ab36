"""Upload bytes -> (H, W) uint8 grayscale image in [0, 255], C-contiguous, ink as the client drew it.

The first stage of the request path. It trusts nothing the client says: the format is sniffed from the
file's magic bytes (never from its content type), the pixel count is read from the header and checked
before a single pixel is decoded, and every decoder failure becomes a domain error (400, 413 or 415).
No other exception leaves this module, whatever the bytes.

Why Pillow for every format rather than `cv2.imdecode`: one parser reads both the header (`Image.open`
is lazy, so the size check costs nothing) and the pixels, and it handles what real uploads contain:
EXIF orientation (phone photos), alpha channels and palettes with a transparent index (composited on
white, as every viewer shows them), 16-bit samples, CMYK JPEGs, and multi-frame GIF/TIFF/WebP (first
frame). `cv2.imdecode` ignores EXIF with IMREAD_UNCHANGED and drops alpha with IMREAD_GRAYSCALE, which
turns black ink on a transparent background into an all-black image.
"""

from __future__ import annotations

import codecs
import io

import numpy as np
from PIL import Image, ImageOps

from digits.errors import (
    DigitServeError,
    EmptyUploadError,
    ImageTooLargeError,
    UndecodableImageError,
    UnsupportedImageTypeError,
)

# Magic bytes at offset 0 -> the Pillow plugin that decodes them. Opening with only that plugin
# also keeps Pillow from trying its other ~40 parsers (EPS, for one, would start Ghostscript).
_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
# Files clients upload by mistake: recognizably something else, so 415 names what we saw.
_FOREIGN_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7z archive"),
    (b"%!PS", "a PostScript document"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\xffO\xffQ", "a JPEG 2000 image"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"),
)
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_TEXT_CONTROL_BYTES = frozenset(range(0x00, 0x09)) | frozenset(range(0x0E, 0x20)) | {0x7F}
_SNIFF_LENGTH_BYTES = 1024


def _describe_container(data: bytes) -> str | None:
    """Names RIFF and ISO-BMFF files (WebP, HEIC, AVIF, video) from their brand; None otherwise."""
    if data[:4] == b"RIFF":
        return "WEBP" if data[8:12] == b"WEBP" else "a RIFF file (audio or video)"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _HEIF_BRANDS:
            return "a HEIC image"
        return "an AVIF image" if brand in (b"avif", b"avis") else "an ISO media file (video)"
    return None


def _describe_text(head: bytes) -> str | None:
    """Names a text upload (SVG, XML/HTML, plain text) from its first bytes; None if it is binary."""
    if any(byte in _TEXT_CONTROL_BYTES for byte in head):
        return None
    try:
        # An incremental decoder tolerates a multi-byte character cut off at the end of `head`.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in lowered:
        return "an SVG drawing (vector images are not decoded; export it as PNG)"
    return "an XML or HTML document" if lowered.startswith(b"<") else "plain text"


def sniff_image_format(data: bytes) -> str:
    """Non-empty upload bytes -> the Pillow format name that decodes them ("PNG", "JPEG", ...).

    The rule for refusals: bytes recognizably of another kind (a known non-image or unsupported image
    signature, or anything that reads as text) are 415, since the client sent the wrong kind of file;
    unknown binary bytes are 400, since they may be an image too corrupt to recognize.

    Raises:
        UnsupportedImageTypeError: a known format we do not decode, or text.
        UndecodableImageError: bytes with no known signature.
    """
    for signature, image_format in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return image_format
    detected = _describe_container(data)
    if detected == "WEBP":
        return detected
    for signature, description in _FOREIGN_SIGNATURES:
        if data.startswith(signature):
            detected = description
    detected = detected or _describe_text(data[:_SNIFF_LENGTH_BYTES])
    if detected is not None:
        raise UnsupportedImageTypeError(
            f"the upload is {detected}; supported formats are PNG, JPEG, BMP, WebP, TIFF and GIF"
        )
    raise UndecodableImageError("the upload is not a recognizable image (unknown file signature)")


def _check_pixel_count(size: tuple[int, int], max_image_pixels: int) -> None:
    width, height = size
    if width * height > max_image_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} = {width * height} pixels; the limit is {max_image_pixels}"
        )


def _orient_upright(image: Image.Image) -> Image.Image:
    """Applies the EXIF Orientation tag; a broken EXIF block should not cost the user the upload."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # any EXIF parsing failure means "orientation unknown"
        return image


def _high_bit_depth_to_uint8(image: Image.Image) -> np.ndarray:
    """16-bit and 32-bit integer samples are scaled from [0, 65535]; float samples from [0, 1]."""
    samples = np.asarray(image).astype(np.float64)
    if image.mode == "F":
        full_scale = 1.0 if samples.size and np.nanmax(samples) <= 1.0 else 255.0
    else:
        full_scale = 65535.0
    scaled = np.nan_to_num(samples * (255.0 / full_scale), nan=0.0)
    return np.rint(np.clip(scaled, 0, 255)).astype(np.uint8)


def _to_grayscale(image: Image.Image) -> np.ndarray:
    """Decoded image of any mode -> (H, W) uint8 luma, transparent areas shown as white paper."""
    if image.mode in ("I", "F") or image.mode.startswith("I;"):
        return _high_bit_depth_to_uint8(image)
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        luma = np.asarray(rgba.convert("L"), dtype=np.float32)
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        return np.rint(luma * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if image.mode not in ("1", "L", "P", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB...: Pillow has no direct path to L for all
    return np.asarray(image.convert("L"), dtype=np.uint8)


def decode_image(data: bytes, *, max_image_pixels: int = 40_000_000) -> np.ndarray:
    """Upload bytes -> (H, W) uint8 grayscale, C-contiguous, upright, alpha composited on white.

    Args:
        data: the raw bytes of the uploaded file.
        max_image_pixels: refuse images whose width * height exceeds this, before decoding pixels.

    Returns:
        (H, W) uint8 in [0, 255]: the first frame, in the orientation its EXIF tag asks for.

    Raises:
        EmptyUploadError: `data` is empty.
        UnsupportedImageTypeError: not one of PNG, JPEG, BMP, WebP, TIFF, GIF.
        ImageTooLargeError: more pixels than `max_image_pixels` (or than memory allows).
        UndecodableImageError: corrupt or truncated bytes; never a partially decoded image.
    """
    if not data:
        raise EmptyUploadError("the uploaded file is empty")
    image_format = sniff_image_format(data)
    try:
        with Image.open(io.BytesIO(data), formats=[image_format]) as opened:
            _check_pixel_count(opened.size, max_image_pixels)
            opened.load()
            gray = _to_grayscale(_orient_upright(opened))
    except DigitServeError:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own cap (2x its MAX_IMAGE_PIXELS)
        raise ImageTooLargeError(f"the image has too many pixels: {error}") from error
    except MemoryError as error:
        raise ImageTooLargeError("the image is too large to decode in the memory available") from error
    except Exception as error:  # Pillow raises OSError, ValueError, SyntaxError, ...
        raise UndecodableImageError(f"the {image_format} file could not be decoded: {error}") from error
    return np.ascontiguousarray(gray)
