"""The JPEG frame and scans are read from the file's markers, without decoding a pixel.

The walk must step over everything that is not a marker (stuffed 0xFF00 bytes and restart markers in
the entropy-coded data, fill bytes, the payloads of segments) and refuse what a decoder would choke
on, or spend seconds on: a scan bomb, a frame its data cannot fill, a file cut short.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

from app.pipeline.jpeg_frame import MAX_MARKER_SEGMENTS, read_jpeg_frame
from app.pipeline.jpeg_scans import count_jpeg_scans_at_most, read_jpeg_scans
from digits.errors import ImageTooComplexError, UndecodableImageError
from testkit.hostile_images import jpeg_segments, progressive_scan_bomb
from testkit.images import encode_with_pillow

pytestmark = pytest.mark.unit

MANY_SCANS = 10_000


def noisy_jpeg(**options) -> bytes:
    """Noise at quality 100: entropy-coded data full of 0xFF bytes, each stuffed as 0xFF00."""
    noise = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    return encode_with_pillow(Image.fromarray(noise), "JPEG", quality=100, **options)


def scan_count(data: bytes) -> int:
    return len(read_jpeg_scans(data, read_jpeg_frame(data), max_scans=MANY_SCANS).scan_data_ends)


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def insert_after_first_scan(data: bytes, inserted: bytes) -> bytes:
    first_scan_end = next(end for marker, _, end in jpeg_segments(data) if marker == 0xDA)
    return data[:first_scan_end] + inserted + data[first_scan_end:]


def patch_frame_size(data: bytes, width: int, height: int) -> bytes:
    frame_start = next(start for marker, start, _ in jpeg_segments(data) if marker in (0xC0, 0xC2))
    return data[: frame_start + 5] + struct.pack(">HH", height, width) + data[frame_start + 9 :]


def test_a_baseline_jpeg_has_one_scan_that_ends_at_the_end_marker():
    data = noisy_jpeg()
    assert data.count(b"\xff\x00") > 20  # the stuffing the walk must step over
    scans = read_jpeg_scans(data, read_jpeg_frame(data), max_scans=1)
    assert scans.scan_data_ends == (len(data) - 2,) and scans.end_of_image_offset == len(data) - 2
    assert scans.is_read_in_one_pass


@pytest.mark.parametrize(("mode", "expected_scans"), [("RGB", 10), ("L", 6)])
def test_a_progressive_jpeg_has_the_scans_of_libjpegs_script(mode, expected_scans):
    data = encode_with_pillow(Image.new(mode, (40, 40), 90), "JPEG", progressive=True)
    assert scan_count(data) == expected_scans
    assert count_jpeg_scans_at_most(data, read_jpeg_frame(data)) == expected_scans
    assert not read_jpeg_scans(data, read_jpeg_frame(data), MANY_SCANS).is_read_in_one_pass


def test_restart_markers_belong_to_the_scan_they_are_in():
    data = noisy_jpeg(restart_marker_blocks=1)
    assert sum(data.count(bytes([0xFF, code])) for code in range(0xD0, 0xD8)) == 11  # one per MCU
    assert scan_count(data) == 1


def test_fill_bytes_before_a_marker_are_skipped():
    data = noisy_jpeg(progressive=True)
    filled = data.replace(b"\xff\xda", b"\xff\xff\xff\xda").replace(b"\xff\xc4", b"\xff\xff\xc4")
    assert scan_count(filled) == scan_count(data)
    assert read_jpeg_frame(filled).width_pixels == 48


def test_marker_bytes_inside_a_segment_are_not_counted_as_scans():
    data = encode_with_pillow(Image.new("L", (40, 40), 90), "JPEG", progressive=True)
    commented = insert_after_first_scan(data, segment(0xFE, b"\xff\xda" * 40))  # a COM segment
    frame = read_jpeg_frame(commented)
    assert count_jpeg_scans_at_most(commented, frame) == 6 + 40  # the cheap bound counts them...
    assert scan_count(commented) == 6  # ...the walk does not


def test_a_scan_bomb_is_refused_past_the_scan_limit():
    bomb = progressive_scan_bomb(side_pixels=64, repeats=100)
    frame = read_jpeg_frame(bomb)
    assert count_jpeg_scans_at_most(bomb, frame) > 100
    with pytest.raises(ImageTooComplexError, match="more than 24 scans"):
        read_jpeg_scans(bomb, frame, max_scans=24)


def test_a_file_of_countless_empty_segments_is_refused_without_reading_them_all():
    data = encode_with_pillow(Image.new("L", (8, 8)), "JPEG")
    padded = data[:2] + segment(0xFE, b"") * (MAX_MARKER_SEGMENTS + 1) + data[2:]
    with pytest.raises(ImageTooComplexError, match="segments"):
        read_jpeg_frame(padded)


def test_a_file_without_its_end_marker_is_truncated():
    data = noisy_jpeg()
    with pytest.raises(UndecodableImageError, match="truncated"):
        read_jpeg_scans(data[:-2], read_jpeg_frame(data), MANY_SCANS)


def test_a_segment_longer_than_the_file_is_truncated():
    data = encode_with_pillow(Image.new("L", (40, 40), 90), "JPEG", progressive=True)
    cut_in_a_table = data.rindex(b"\xff\xc4") + 10
    with pytest.raises(UndecodableImageError, match="truncated"):
        scan_count(data[:cut_in_a_table] + b"\xff\xd9")


@pytest.mark.parametrize("is_progressive", [False, True], ids=["baseline", "progressive"])
def test_a_frame_larger_than_its_data_can_fill_is_refused(is_progressive):
    data = noisy_jpeg(progressive=is_progressive)
    doctored = patch_frame_size(data, 6000, 6000)
    with pytest.raises(UndecodableImageError, match="far too short for its stated size of 6000x6000"):
        scan_count(doctored)


def test_a_blank_image_still_fills_its_frame_at_one_bit_a_block():
    # The leanest real data: a blank progressive image codes each block's DC in about one bit.
    data = encode_with_pillow(Image.new("L", (2000, 1000), 255), "JPEG", progressive=True, optimize=True)
    assert scan_count(data) == 6


def test_the_frame_gives_size_sampling_and_the_coefficients_a_progressive_decode_holds():
    colour = encode_with_pillow(Image.new("RGB", (100, 60)), "JPEG", subsampling=2)  # 4:2:0
    frame = read_jpeg_frame(colour)
    assert (frame.width_pixels, frame.height_pixels) == (100, 60)
    assert frame.sampling_factors == ((2, 2), (1, 1), (1, 1))
    # MCUs of 16x16: 7 x 4 of them, each 4 luma blocks and 2 chroma blocks of 64 16-bit coefficients
    assert frame.coefficient_bytes() == 7 * 4 * 6 * 128
    assert frame.scan_block_count((frame.component_ids[1],)) == 7 * 4  # chroma alone: its own blocks


def test_a_header_that_ends_before_the_first_scan_is_truncated():
    data = noisy_jpeg()
    with pytest.raises(UndecodableImageError, match="truncated"):
        read_jpeg_frame(data[: data.index(b"\xff\xda")])


def test_a_progressive_jpeg_cut_between_scans_is_refused_as_incomplete():
    # The first scans alone make a coarser image that decoders accept; the file is still cut short.
    data = encode_with_pillow(Image.new("RGB", (40, 40), 90), "JPEG", progressive=True)
    last_scan_start = max(start for marker, start, _ in jpeg_segments(data) if marker == 0xDA)
    with pytest.raises(UndecodableImageError, match="stop before its image is complete"):
        scan_count(data[:last_scan_start] + b"\xff\xd9")
