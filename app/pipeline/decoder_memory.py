"""An image's header -> the bytes decoding it will hold at once: the decoded image, each format's decoder
buffers, and the copies the conversion to grayscale makes.

Measured against the peak resident memory of `decode_image` on 4000x4000 images of every format and
mode (and 1 x 4,000,000 strips): within 0.3 MB of it for PNG, GIF, BMP and TIFF, 1-8% over for JPEG,
4% over for 16-bit PNG and 2% for float TIFF, 19% over for WebP. It is only right while it describes
what `decode` and `grayscale` do: a change there is a change here.
"""

from __future__ import annotations

import math
import struct

from PIL import Image

from app.pipeline import grayscale
from app.pipeline.jpeg_frame import JpegFrame
from digits.errors import UndecodableImageError

_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by PNG colour type
_PNG_BIT_DEPTH_OFFSET, _PNG_COLOUR_TYPE_OFFSET = 24, 25  # in IHDR, which every PNG starts with
# libwebp's RGBA canvas and the previous frame's, and Pillow's copy of the frame: held while open.
_WEBP_CANVAS_BYTES_PER_PIXEL = 3 * 4
_LIBJPEG_BYTES_PER_COLUMN = 128  # libjpeg's bands of full-width sample rows, per component
# TIFF tags: Compression, BitsPerSample, RowsPerStrip, TileWidth, TileLength
_COMPRESSION, _BITS_PER_SAMPLE, _ROWS_PER_STRIP, _TILE_WIDTH, _TILE_LENGTH = 259, 258, 278, 322, 323


def read_webp_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a WebP's first chunk: read before Pillow, whose decoder allocates its
    canvases as the file is opened.

    Raises:
        UndecodableImageError: no VP8X, VP8L or VP8 chunk header where the size should be.
    """
    chunk, payload = data[12:16], data[20:30]
    if chunk == b"VP8X" and len(payload) == 10:
        return 1 + int.from_bytes(payload[4:7], "little"), 1 + int.from_bytes(payload[7:10], "little")
    if chunk == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
        bits = int.from_bytes(payload[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(payload) == 10 and payload[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", payload[6:10])
        return width & 0x3FFF, height & 0x3FFF
    raise UndecodableImageError("the file starts like a WebP image, but its header is damaged")


def webp_canvas_bytes(size: tuple[int, int]) -> int:
    """What Pillow's WebP decoder holds for as long as the image is open."""
    return _WEBP_CANVAS_BYTES_PER_PIXEL * size[0] * size[1]


def _tiff_buffer_bytes(image: Image.Image) -> int:
    """libtiff reads a whole strip or tile of a compressed TIFF into a buffer (4 bytes a pixel at least)."""
    width, height = image.size
    tags = getattr(image, "tag_v2", {})
    try:
        if int(tags.get(_COMPRESSION, 1)) == 1:
            return 0  # uncompressed: Pillow reads the rows itself
        bits = tags.get(_BITS_PER_SAMPLE, (8,))
        bytes_per_pixel = max(4, math.ceil(sum(bits if isinstance(bits, tuple) else (bits,)) / 8))
        if _TILE_WIDTH in tags and _TILE_LENGTH in tags:  # a tile may be larger than the image
            return int(tags[_TILE_WIDTH]) * int(tags[_TILE_LENGTH]) * bytes_per_pixel
        return width * min(height, int(tags.get(_ROWS_PER_STRIP, height))) * bytes_per_pixel
    except (TypeError, ValueError):
        return 4 * width * height  # unreadable tags: assume one strip of the whole image


def working_bytes(image_format: str, image: Image.Image, data: bytes) -> int:
    """Bytes the decoder of a PNG, TIFF, BMP or GIF holds besides the image while it decodes."""
    width, height = image.size
    if image_format == "PNG" and len(data) > _PNG_COLOUR_TYPE_OFFSET:
        channels = _PNG_CHANNELS.get(data[_PNG_COLOUR_TYPE_OFFSET], 4)
        row_bytes = math.ceil(width * channels * data[_PNG_BIT_DEPTH_OFFSET] / 8) + 1
        return 2 * row_bytes  # the current and the previous row, at the file's bit depth
    if image_format == "TIFF":
        return _tiff_buffer_bytes(image)
    if image_format == "BMP" and image.info.get("compression") in (1, 2):
        return 2 * width * height  # Pillow's run-length decoder builds the pixels in Python, then copies
    return 0


def jpeg_buffer_bytes(
    frame: JpegFrame, scan_count: int, file_bytes: int, decoded_size: tuple[int, int]
) -> tuple[int, int]:
    """(working, held) bytes of decoding a JPEG as `decode` does.

    libjpeg holds a file it cannot read in one pass whole, as coefficients at full size, whatever the
    DCT scaling. Decode probes a copy of the file; a file not read in one pass it decodes twice,
    holding the first result while it makes the second.
    """
    is_one_pass = frame.is_read_in_one_pass(scan_count)
    working = 0 if is_one_pass else frame.coefficient_bytes()
    held = file_bytes if is_one_pass else 2 * file_bytes + decoded_size[0] * decoded_size[1]
    return working, held + _LIBJPEG_BYTES_PER_COLUMN * frame.width_pixels * len(frame.component_ids)


def estimate_decoded_bytes(
    mode: str, has_transparency: bool, size: tuple[int, int], working: int, held: int = 0
) -> int:
    """Most bytes decoding and the conversion to grayscale hold at once: the decoded image, what is
    held beside it throughout, and the larger of the decoder's working buffers (freed once it is done)
    and the conversion's copies (made after)."""
    conversion = grayscale.conversion_peak_bytes(mode, has_transparency, size)
    return grayscale.image_bytes(mode, size) + held + max(working, conversion)
