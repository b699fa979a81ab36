"""Upload bytes -> the name of the image format that decodes them ("PNG", "JPEG", ...), from magic bytes.

The first look at an upload: the format is sniffed from the file's first bytes, never from its name or
content type. Bytes of another kind (PDF, ZIP, SVG, text...) are named in a 415 so that the client
knows what it sent; unknown binary bytes are a 400.
"""

from __future__ import annotations

import codecs

from digits.errors import UndecodableImageError, UnsupportedImageTypeError

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
