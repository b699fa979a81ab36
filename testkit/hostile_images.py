"""Hostile uploads, built small: a progressive-JPEG scan bomb, a huge-but-thin PNG strip, and headers
padded with many empty pieces (PNG chunks, GIF extensions, TIFF entries, JPEG fill bytes).

All are files that decoders accept as well-formed: what makes them hostile is the work their few
bytes ask for. The benchmark of hostile traffic and the decoder's tests build them here.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

_STANDALONE_MARKERS = frozenset({0xD8, 0xD9, 0x01, *range(0xD0, 0xD8)})  # SOI, EOI, TEM, RSTn


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """A JPEG file -> its segments as (marker, start, end); a scan (SOS) runs to the next marker.

    Entropy-coded data holds 0xFF only as 0xFF00 (stuffing) or 0xFFD0-D7 (restart markers), which
    belong to the scan; any other 0xFFxx ends it.
    """
    segments, position = [], 2  # after SOI
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker in _STANDALONE_MARKERS:
            segments.append((marker, position, position + 2))
            position += 2
            continue
        end = position + 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
        if marker == 0xDA:  # SOS: skip the entropy-coded data that follows its header
            while end + 1 < len(data) and not (
                data[end] == 0xFF and data[end + 1] not in (0x00, *range(0xD0, 0xD8))
            ):
                end += 1
        segments.append((marker, position, end))
        position = end
    return segments


def progressive_scan_bomb(side_pixels: int = 6000, repeats: int = 2000) -> bytes:
    """A blank progressive JPEG whose smallest scan is repeated `repeats` times: each repeat makes the
    decoder pass over the whole `side_pixels`^2 image again (seconds for a few hundred KB)."""
    buffer = io.BytesIO()
    Image.new("L", (side_pixels, side_pixels), 255).save(buffer, "JPEG", progressive=True, quality=50)
    data = buffer.getvalue()
    scans = [(start, end) for marker, start, end in jpeg_segments(data) if marker == 0xDA]
    smallest_start, smallest_end = min(scans, key=lambda scan: scan[1] - scan[0])
    end_of_image = data.rindex(b"\xff\xd9")
    return data[:end_of_image] + data[smallest_start:smallest_end] * repeats + data[end_of_image:]


def strip_png(width_pixels: int = 1, height_pixels: int = 40_000_000, channels: int = 4) -> bytes:
    """A white PNG strip of 8-bit RGBA (or gray with `channels=1`): tiny compressed, huge decoded."""
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    row = b"\x00" + b"\xff" * (width_pixels * channels)  # filter byte 0, then the pixels
    compressor = zlib.compressobj(9)
    rows_per_chunk = max(1, (1 << 20) // len(row))
    compressed = (
        b"".join(
            compressor.compress(row * min(rows_per_chunk, height_pixels - start))
            for start in range(0, height_pixels, rows_per_chunk)
        )
        + compressor.flush()
    )

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width_pixels, height_pixels, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed) + chunk(b"IEND", b"")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def padded_header(image_format: str, pieces: int) -> bytes:
    """A white 28x28 image whose header holds `pieces` empty pieces before its pixel data: empty text
    chunks (PNG), empty comment extensions (GIF), private SHORT entries (TIFF), fill bytes (JPEG)."""
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buffer, image_format)
    data = buffer.getvalue()
    if image_format == "PNG":
        first_chunk_end = 8 + 12 + 13  # signature, IHDR
        return data[:first_chunk_end] + _png_chunk(b"teXt", b"") * pieces + data[first_chunk_end:]
    if image_format == "GIF":
        flags = data[10]
        screen_end = 13 + (3 << ((flags & 0x07) + 1) if flags & 0x80 else 0)
        return data[:screen_end] + b"\x21\xfe\x00" * pieces + data[screen_end:]
    if image_format == "JPEG":
        return data[:2] + b"\xff" * pieces + data[2:]
    if image_format == "TIFF":
        return _tiff_with_entries(pieces)
    raise ValueError(f"no padded header for {image_format}")


def _tiff_with_entries(entry_count: int) -> bytes:
    """A white 28x28 grey TIFF (little-endian) whose directory has `entry_count` entries (at least 9)."""
    pixels = b"\xff" * 28 * 28
    directory_at = 8
    pixels_at = directory_at + 2 + 12 * entry_count + 4
    required = {256: 28, 257: 28, 258: 8, 259: 1, 262: 1, 273: pixels_at, 277: 1, 278: 28, 279: len(pixels)}
    private = range(40000, 40000 + entry_count - len(required))  # private tags, ascending as required
    entries = b"".join(
        struct.pack("<HHII", tag, 4 if tag in (273, 279) else 3, 1, value) for tag, value in required.items()
    ) + b"".join(struct.pack("<HHII", tag, 3, 1, 0) for tag in private)
    return b"II*\x00" + struct.pack("<IH", directory_at, entry_count) + entries + b"\x00" * 4 + pixels
