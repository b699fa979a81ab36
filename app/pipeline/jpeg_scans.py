"""JPEG bytes and frame -> `JpegScans` (where each scan's data ends, where the image ends), walking the
file's markers from the first scan to its end marker, without decoding a pixel.

Entropy-coded data, after each scan header, holds 0xFF only as 0xFF00 (a stuffed data byte) or
0xFFD0-D7 (restart markers), so any other 0xFFxx after it starts the next segment. The walk answers
what the header cannot: how many scans the decoder will make (each scan of a progressive JPEG is
another pass over the whole image, so a few hundred bytes of repeated scans cost seconds), whether
the data can fill the frame and the scans complete the image (a file cut short or a doctored header
is refused), and where each scan's data ends (decode probes there for data that stops short).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.pipeline.jpeg_frame import (
    END_OF_IMAGE,
    MAX_MARKER_SEGMENTS,
    STANDALONE_MARKERS,
    START_OF_SCAN,
    JpegFrame,
    ScanHeader,
    read_scan_header,
    segment_length,
)
from digits.errors import ImageTooComplexError, UndecodableImageError

# Huffman-coded DCT frames (baseline, extended, progressive): every block costs at least one bit.
_HUFFMAN_DCT_FRAMES = frozenset({0xC0, 0xC1, 0xC2})
_SEQUENTIAL_DCT_FRAMES = frozenset({0xC0, 0xC1, 0xC9})  # Huffman or arithmetic coded
_PROGRESSIVE_DCT_FRAMES = frozenset({0xC2, 0xCA})
_SEARCH_CHUNK_BYTES = 1 << 20
# 0xFF followed by one of these is part of the entropy-coded data or fill, not a marker.
_IS_MARKER_CODE = np.ones(256, dtype=bool)
_IS_MARKER_CODE[[0x00, *range(0xD0, 0xD8), 0xFF]] = False


@dataclass(frozen=True)
class JpegScans:
    """Every scan of the image, from the first SOS to the EOI marker that ends it.

    Attributes:
        scan_data_ends: where each scan's entropy-coded data ends (the offset of the next marker).
        end_of_image_offset: where the EOI marker ending the image starts (bytes after it, which some
            cameras append, are not part of the image).
        is_read_in_one_pass: see `JpegFrame.is_read_in_one_pass`.
    """

    scan_data_ends: tuple[int, ...]
    end_of_image_offset: int
    is_read_in_one_pass: bool


def count_jpeg_scans_at_most(data: bytes, frame: JpegFrame) -> int:
    """An upper bound of the scan count, in one vectorized pass over the file (about 1 ms per 10 MB).

    Entropy-coded data never holds the bytes 0xFF 0xDA, so every scan's SOS marker is counted; pairs
    inside later segments' payloads (tables, comments) are counted too, hence a bound, not a count.
    """
    total = 0
    for start in range(frame.first_scan_offset, len(data) - 1, _SEARCH_CHUNK_BYTES):
        stop = min(start + _SEARCH_CHUNK_BYTES + 1, len(data))  # one byte of overlap: pairs across chunks
        for phase in (0, 1):
            pairs = np.frombuffer(data, dtype="<u2", count=(stop - start - phase) // 2, offset=start + phase)
            total += int(np.count_nonzero(pairs == 0xDAFF))  # the bytes FF DA, read little-endian
    return total


def _marker_offsets(data: bytes, start: int) -> np.ndarray:
    """Sorted offsets, from `start`, of every 0xFF that begins a marker (not stuffing, RSTn or fill)."""
    view = np.frombuffer(data, dtype=np.uint8)
    found = [np.empty(0, dtype=np.int64)]
    for chunk_start in range(start, len(data) - 1, _SEARCH_CHUNK_BYTES):
        chunk_stop = min(chunk_start + _SEARCH_CHUNK_BYTES, len(data) - 1)
        candidates = np.flatnonzero(view[chunk_start:chunk_stop] == 0xFF) + chunk_start
        found.append(candidates[_IS_MARKER_CODE[view[candidates + 1]]])
    return np.concatenate(found)


def _check_first_scan_fills_frame(frame: JpegFrame, first_scan: ScanHeader, data_end: int) -> None:
    """Refuses a frame far larger than its data: each block of the first (DC) scan takes >= 1 bit."""
    if frame.frame_marker not in _HUFFMAN_DCT_FRAMES or first_scan.spectral_start != 0:
        return  # arithmetic coding can spend less than a bit per block; an AC-first scan is odd but legal
    if (data_end - first_scan.data_offset) * 8 < frame.scan_block_count(first_scan.component_ids):
        raise UndecodableImageError(
            f"the JPEG's image data is far too short for its stated size of {frame.width_pixels}x"
            f"{frame.height_pixels} pixels (the header or the file is damaged)"
        )


def _check_scans_complete_the_image(frame: JpegFrame, scans: list[ScanHeader]) -> None:
    """Refuses scans that leave a component out, or a coefficient without its last bit, as a file cut
    between scans does: the first scans of a progressive JPEG make a coarser image that decoders
    accept, but every encoder's progression ends with each coefficient whole (coded down to bit 0)."""
    if frame.frame_marker in _SEQUENTIAL_DCT_FRAMES:
        coded = {identity for scan in scans for identity in scan.component_ids}
        is_complete = coded.issuperset(frame.component_ids)
    elif frame.frame_marker in _PROGRESSIVE_DCT_FRAMES:
        lowest_bits: dict[int, list[int | None]] = {identity: [None] * 64 for identity in frame.component_ids}
        for scan in scans:
            band = range(scan.spectral_start, min(scan.spectral_end, 63) + 1)
            for identity in scan.component_ids:
                lowest_bits.get(identity, [None] * 64)[band.start : band.stop] = [scan.low_bit] * len(band)
        is_complete = all(bit == 0 for bits in lowest_bits.values() for bit in bits)
    else:
        return  # lossless and hierarchical frames use the scan fields otherwise
    if not is_complete:
        raise UndecodableImageError("the JPEG's scans stop before its image is complete (it is truncated)")


def read_jpeg_scans(data: bytes, frame: JpegFrame, max_scans: int) -> JpegScans:
    """JPEG bytes -> every scan's extent, walking the segments from the first scan to EOI.

    Raises:
        ImageTooComplexError: more than `max_scans` scans, or more than `MAX_MARKER_SEGMENTS` segments.
        UndecodableImageError: no EOI marker, a segment cut short, scans that do not complete the
            image (a truncated file), or a first scan too short for the frame (a doctored header).
    """
    markers = _marker_offsets(data, frame.first_scan_offset)
    scans: list[ScanHeader] = []
    scan_data_ends: list[int] = []
    position = frame.first_scan_offset
    for _ in range(MAX_MARKER_SEGMENTS):
        index = int(np.searchsorted(markers, position))
        if index == len(markers):
            raise UndecodableImageError("the JPEG file ends before its end-of-image marker (it is truncated)")
        offset = int(markers[index])
        if len(scan_data_ends) < len(scans):
            scan_data_ends.append(offset)  # the first marker after a scan header ends the scan's data
        marker = data[offset + 1]
        if marker == END_OF_IMAGE:
            break
        if marker == START_OF_SCAN:
            if len(scans) == max_scans:
                raise ImageTooComplexError(
                    f"the JPEG holds more than {max_scans} scans (passes over the image); "
                    "save it as a baseline (non-progressive) JPEG"
                )
            scans.append(read_scan_header(data, offset))
            position = scans[-1].data_offset
        else:
            position = offset + 2 + (0 if marker in STANDALONE_MARKERS else segment_length(data, offset))
    else:
        raise ImageTooComplexError(f"the JPEG file holds more than {MAX_MARKER_SEGMENTS} segments")
    _check_first_scan_fills_frame(frame, scans[0], scan_data_ends[0])
    _check_scans_complete_the_image(frame, scans)
    return JpegScans(tuple(scan_data_ends), offset, frame.is_read_in_one_pass(len(scans)))
