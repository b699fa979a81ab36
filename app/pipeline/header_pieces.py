"""Upload bytes -> refused when the part before its pixel data holds more pieces than a real image's.

Pillow reads a header piece by piece in Python: a PNG's chunks, a GIF's extension sub-blocks, a TIFF
directory's entries, a JPEG's stray bytes between markers (one at a time). Each costs 0.2-6 us, and
the header is read on the event loop (admission weighs an upload by it), so a 10 MB file of empty
pieces stopped every request for 1-4 s (measured: 800,000 empty PNG chunks 2.7 s, 9 MB of JPEG fill
bytes 4.1 s, a million empty GIF extensions 0.8 s). Real images have a few dozen pieces before their
pixels; these walks count them (stopping at the limit, in microseconds) before Pillow reads a byte.
A JPEG's marker segments and stray bytes are counted by `jpeg_frame`, which reads them anyway, and it
hands its metadata segments to `check_jpeg_metadata` here.
"""

from __future__ import annotations

import struct

from digits.errors import ImageTooComplexError

# Pieces before the pixel data: real PNGs and TIFFs have under a hundred, a GIF with XMP metadata a
# few thousand sub-blocks (its "magic trailer" is 257 one-byte sub-blocks). At the limit Pillow spends
# at most ~25 ms (TIFF entries, the dearest piece) on the header.
MAX_HEADER_PIECES = 4096
_PNG_SIGNATURE_BYTES = 8
_GIF_SCREEN_DESCRIPTOR_END = 13  # "GIF89a", then width, height, flags, background, aspect ratio
_GIF_EXTENSION = 0x21
_GIF_HEADER_ENDS = frozenset({0x2C, 0x3B})  # an image descriptor, the trailer
# A JPEG's metadata that Pillow parses piece by piece on opening: Photoshop's APP13 resource blocks
# (12 bytes each at the least) and the Exif directory (the TIFF entry count below). Photoshop writes a
# few kB of resources; 128 kB bounds Pillow's walk at ~10 ms.
MAX_JPEG_PHOTOSHOP_BYTES = 128 * 1024
_JPEG_PHOTOSHOP, _JPEG_EXIF = 0xED, 0xE1
_EXIF_SIGNATURE = b"Exif\x00\x00"


def _refuse(image_format: str, what: str) -> ImageTooComplexError:
    return ImageTooComplexError(
        f"the {image_format} file holds more than {MAX_HEADER_PIECES:,} {what} before its image data; "
        "a real image has a few dozen. Save it again with an ordinary image program"
    )


def _count_png_chunks(data: bytes) -> int:
    """Chunks before the first IDAT (or the end of what is readable), up to one past the limit."""
    offset, count = _PNG_SIGNATURE_BYTES, 0
    while count <= MAX_HEADER_PIECES and offset + 8 <= len(data):
        length, chunk_type = struct.unpack_from(">I4s", data, offset)
        if chunk_type == b"IDAT":
            break
        offset += 12 + length  # length, type, data, CRC
        count += 1
    return count


def _count_gif_sub_blocks(data: bytes) -> int:
    """Extension sub-blocks and stray bytes before the first image, up to one past the limit.

    Walks as Pillow does: an extension ("!") is read sub-block by sub-block, an image descriptor
    (",") or the trailer (";") ends the header, and any other byte is skipped one at a time.
    """
    if len(data) < _GIF_SCREEN_DESCRIPTOR_END:
        return 0
    flags = data[10]
    offset = _GIF_SCREEN_DESCRIPTOR_END + (3 << ((flags & 0x07) + 1) if flags & 0x80 else 0)
    count = 0
    while count <= MAX_HEADER_PIECES and offset < len(data) and data[offset] not in _GIF_HEADER_ENDS:
        if data[offset] != _GIF_EXTENSION:
            offset, count = offset + 1, count + 1  # a stray byte
            continue
        offset += 2  # introducer, label
        while count <= MAX_HEADER_PIECES and offset < len(data):
            size = data[offset]
            offset += 1 + size
            count += 1
            if size == 0:  # the block terminator
                break
    return count


def _count_tiff_entries(data: bytes) -> int:
    """Entries of the first image file directory (the one Pillow reads on opening)."""
    if len(data) < 8:
        return 0
    order = "<" if data[:2] == b"II" else ">"
    (directory_offset,) = struct.unpack_from(f"{order}I", data, 4)
    if directory_offset + 2 > len(data):
        return 0
    (entry_count,) = struct.unpack_from(f"{order}H", data, directory_offset)
    return entry_count


def check_jpeg_metadata(data: bytes, segments: list[tuple[int, int, int]]) -> None:
    """Refuses a JPEG whose metadata Pillow would parse for long: more than `MAX_JPEG_PHOTOSHOP_BYTES`
    of Photoshop resources, or an Exif directory of more than `MAX_HEADER_PIECES` entries.

    Args:
        data: the file.
        segments: (marker, payload start, payload end) of each segment before the first scan.

    Raises:
        ImageTooComplexError: either, named.
    """
    photoshop_bytes = sum(end - start for marker, start, end in segments if marker == _JPEG_PHOTOSHOP)
    if photoshop_bytes > MAX_JPEG_PHOTOSHOP_BYTES:
        raise ImageTooComplexError(
            f"the JPEG file holds {photoshop_bytes:,} bytes of Photoshop metadata; the limit is "
            f"{MAX_JPEG_PHOTOSHOP_BYTES:,}. Save it again without the metadata"
        )
    for marker, start, end in segments:
        is_exif = marker == _JPEG_EXIF and data[start : start + len(_EXIF_SIGNATURE)] == _EXIF_SIGNATURE
        if is_exif and _count_tiff_entries(data[start + len(_EXIF_SIGNATURE) : end]) > MAX_HEADER_PIECES:
            raise _refuse("JPEG", "Exif entries")


def check_header_pieces(data: bytes, image_format: str) -> None:
    """Refuses a PNG, GIF or TIFF with more than `MAX_HEADER_PIECES` pieces before its pixel data.

    A damaged or truncated structure is left to Pillow, which says what is wrong with it.

    Raises:
        ImageTooComplexError: too many pieces (a 413: the cost of reading the file, not its content).
    """
    if image_format == "PNG" and _count_png_chunks(data) > MAX_HEADER_PIECES:
        raise _refuse("PNG", "chunks")
    if image_format == "GIF" and _count_gif_sub_blocks(data) > MAX_HEADER_PIECES:
        raise _refuse("GIF", "extension blocks")
    if image_format == "TIFF" and _count_tiff_entries(data) > MAX_HEADER_PIECES:
        raise _refuse("TIFF", "directory entries")
