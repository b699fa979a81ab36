"""JPEG bytes -> `JpegFrame` (size, colour components and their sampling, where the scans start), read
from the marker segments before the first scan, without decoding a pixel.

A JPEG is a run of marker segments (0xFFxx, most followed by a 2-byte big-endian length that counts
itself), up to the first scan header (SOS); entropy-coded data follows each scan header (see
`jpeg_scans`). Offsets are byte positions in the file.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from typing import NamedTuple

from app.pipeline.header_pieces import check_jpeg_metadata
from digits.errors import ImageTooComplexError, UndecodableImageError

START_OF_SCAN = 0xDA
END_OF_IMAGE = 0xD9
_START_OF_IMAGE = 0xD8
STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn carry no length
# SOF0-SOF15, less DHT (C4), JPG (C8) and DAC (CC), which share the range.
_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PROGRESSIVE_FRAMES = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_SEQUENTIAL_HUFFMAN_FRAMES = frozenset({0xC0, 0xC1})  # baseline and extended
# Real files hold a few dozen (metadata, tables, a table and a header per scan); a cap keeps a file
# of millions of empty segments from costing seconds of parsing.
MAX_MARKER_SEGMENTS = 512
# Bytes between segments (fill bytes before a marker, junk): encoders write none or a few, and Pillow
# steps over each in Python (~0.5 us a byte, on the event loop): 9 MB of them cost it 4 s.
MAX_STRAY_BYTES = 4096
_FILL_RUN = re.compile(rb"\xff+")
_METADATA_MARKERS = frozenset({0xE1, 0xED})  # APP1 (Exif), APP13 (Photoshop): parsed by Pillow on opening
_COEFFICIENT_BYTES_PER_BLOCK = 64 * 2  # libjpeg keeps 64 16-bit coefficients per 8x8 block


class ScanHeader(NamedTuple):
    """An SOS segment: which components a scan codes, which coefficients, and which of their bits."""

    component_ids: tuple[int, ...]
    spectral_start: int  # first coefficient (0: DC) of the band it codes...
    spectral_end: int  # ...and its last (63: the highest AC)
    low_bit: int  # the lowest bit it codes (successive approximation): 0 once a coefficient is whole
    data_offset: int  # where its entropy-coded data begins


@dataclass(frozen=True)
class JpegFrame:
    """The frame header (SOFn) and where the first scan starts.

    Attributes:
        frame_marker: the SOFn code (0xC0 baseline, 0xC2 progressive...).
        width_pixels: stored width.
        height_pixels: stored height.
        sampling_factors: (horizontal, vertical) sampling factor of each component, in frame order.
        component_ids: the id of each component, in frame order (scans name components by id).
        first_scan_offset: where the first SOS marker starts.
        first_scan_component_count: how many components the first scan codes.
    """

    frame_marker: int
    width_pixels: int
    height_pixels: int
    sampling_factors: tuple[tuple[int, int], ...]
    component_ids: tuple[int, ...]
    first_scan_offset: int
    first_scan_component_count: int

    @property
    def is_progressive(self) -> bool:
        return self.frame_marker in _PROGRESSIVE_FRAMES

    def is_read_in_one_pass(self, scan_count: int) -> bool:
        """Whether libjpeg decodes the file as it reads it: one scan of every component of a sequential
        Huffman frame. Any other file is buffered whole, as coefficients, until its end marker."""
        return (
            self.frame_marker in _SEQUENTIAL_HUFFMAN_FRAMES
            and scan_count == 1
            and self.first_scan_component_count == len(self.component_ids)
        )

    def _mcu_grid(self) -> tuple[int, int]:
        """(columns, rows) of minimum coded units: the block pattern that interleaved scans repeat."""
        max_horizontal = max(horizontal for horizontal, _ in self.sampling_factors)
        max_vertical = max(vertical for _, vertical in self.sampling_factors)
        return (
            math.ceil(self.width_pixels / (8 * max_horizontal)),
            math.ceil(self.height_pixels / (8 * max_vertical)),
        )

    def scan_block_count(self, component_ids: tuple[int, ...]) -> int:
        """8x8 blocks a scan of these components codes: whole MCUs if interleaved, else the plane's own."""
        mcu_columns, mcu_rows = self._mcu_grid()
        sampling = dict(zip(self.component_ids, self.sampling_factors, strict=True))
        if len(component_ids) > 1:
            factors = [sampling.get(identity, (0, 0)) for identity in component_ids]
            return mcu_columns * mcu_rows * sum(horizontal * vertical for horizontal, vertical in factors)
        max_horizontal = max(horizontal for horizontal, _ in self.sampling_factors)
        max_vertical = max(vertical for _, vertical in self.sampling_factors)
        horizontal, vertical = sampling.get(component_ids[0], (0, 0))
        plane_width = math.ceil(self.width_pixels * horizontal / max_horizontal)
        plane_height = math.ceil(self.height_pixels * vertical / max_vertical)
        return math.ceil(plane_width / 8) * math.ceil(plane_height / 8)

    def coefficient_bytes(self) -> int:
        """The whole-image coefficient buffer libjpeg holds for a multi-scan (progressive) file."""
        mcu_columns, mcu_rows = self._mcu_grid()
        blocks_per_mcu = sum(horizontal * vertical for horizontal, vertical in self.sampling_factors)
        return mcu_columns * mcu_rows * blocks_per_mcu * _COEFFICIENT_BYTES_PER_BLOCK


def segment_length(data: bytes, offset: int) -> int:
    """Length of the segment whose marker starts at `offset`, checked to lie inside `data`."""
    if offset + 4 > len(data):
        raise UndecodableImageError("the JPEG file ends in the middle of a marker (it is truncated)")
    (length,) = struct.unpack_from(">H", data, offset + 2)
    if length < 2 or offset + 2 + length > len(data):
        raise UndecodableImageError("the JPEG file ends in the middle of a header segment (it is truncated)")
    return length


def read_scan_header(data: bytes, offset: int) -> ScanHeader:
    """The SOS segment at `offset` -> what its scan codes, and where its data begins."""
    length = segment_length(data, offset)
    component_count = data[offset + 4] if length >= 8 else 0  # 8: the shortest header, one component
    if component_count == 0 or length < 6 + 2 * component_count:
        raise UndecodableImageError("the JPEG file has a damaged scan header")
    selectors = tuple(data[offset + 5 + 2 * index] for index in range(component_count))
    band_at = offset + 5 + 2 * component_count  # then the band's first and last coefficients, and bits
    spectral_start, spectral_end, bits = data[band_at : band_at + 3]
    return ScanHeader(selectors, spectral_start, spectral_end, bits & 0x0F, offset + 2 + length)


def _parse_frame(data: bytes, offset: int, marker: int, first_scan_offset: int) -> JpegFrame:
    """The SOFn segment at `offset` -> the frame (with how many components the first scan codes)."""
    height, width, component_count = struct.unpack_from(">HHB", data, offset + 5)
    if height == 0 or width == 0:
        # A height of 0 is legal only with a DNL marker after the first scan, which no browser reads.
        raise UndecodableImageError("the JPEG header gives a width or height of 0")
    components = [data[offset + 10 + 3 * index : offset + 13 + 3 * index] for index in range(component_count)]
    sampling = tuple((entry[1] >> 4, entry[1] & 0x0F) for entry in components if len(entry) == 3)
    if not 1 <= component_count <= 4 or len(sampling) != component_count:
        raise UndecodableImageError("the JPEG frame header is damaged (its colour components)")
    if not all(1 <= factor <= 4 for pair in sampling for factor in pair):
        raise UndecodableImageError("the JPEG frame header is damaged (its sampling factors)")
    ids = tuple(entry[0] for entry in components)
    first_scan_components = len(read_scan_header(data, first_scan_offset).component_ids)
    return JpegFrame(marker, width, height, sampling, ids, first_scan_offset, first_scan_components)


def read_jpeg_frame(data: bytes) -> JpegFrame:
    """JPEG bytes -> the frame header, from the segments before the first scan (a few dozen).

    Raises:
        UndecodableImageError: no frame header before the first scan, or a segment cut short.
        ImageTooComplexError: more than `MAX_MARKER_SEGMENTS` segments, or `MAX_STRAY_BYTES` bytes
            between them, before the first scan; metadata Pillow would parse for long
            (`header_pieces.check_jpeg_metadata`).
    """
    offset, frame_at, stray_bytes = 2, None, 0  # after SOI
    metadata_segments: list[tuple[int, int, int]] = []  # (marker, payload start, end) of APP1, APP13
    for _ in range(MAX_MARKER_SEGMENTS):
        marker_at = data.find(b"\xff", offset)
        if marker_at < 0:
            raise UndecodableImageError("the JPEG file ends before its first scan (it is truncated)")
        fill_end = _FILL_RUN.match(data, marker_at).end()  # the last 0xFF of a run starts the marker
        stray_bytes += fill_end - 1 - offset
        if stray_bytes > MAX_STRAY_BYTES:
            raise ImageTooComplexError(
                f"the JPEG file holds more than {MAX_STRAY_BYTES:,} stray bytes before its image data "
                "(between header segments); a real image has none or a few. Save it again with an "
                "ordinary image program"
            )
        offset = fill_end - 1
        if offset + 1 >= len(data):
            raise UndecodableImageError("the JPEG file ends before its first scan (it is truncated)")
        marker = data[offset + 1]
        if marker in STANDALONE_MARKERS or marker == 0x00:
            offset += 2
            continue
        if marker in (_START_OF_IMAGE, END_OF_IMAGE):
            raise UndecodableImageError("the JPEG file has no image data before its end marker")
        if marker == START_OF_SCAN:
            if frame_at is None:
                raise UndecodableImageError("the JPEG file has a scan but no frame header")
            check_jpeg_metadata(data, metadata_segments)
            return _parse_frame(data, frame_at[0], frame_at[1], offset)
        length = segment_length(data, offset)
        if marker in _FRAME_MARKERS and frame_at is None:
            frame_at = (offset, marker)
        if marker in _METADATA_MARKERS:
            metadata_segments.append((marker, offset + 4, offset + 2 + length))
        offset += 2 + length
    raise ImageTooComplexError(f"the JPEG file holds more than {MAX_MARKER_SEGMENTS} header segments")
