"""inspect_image tells what an upload is and what decoding it will cost, from its header alone.

It refuses what must not be decoded, in every format the service reads: more pixels than allowed, a
strip too thin to hold a digit, more memory than one upload may take (counting bytes per pixel, the
decoder's buffers and the conversion's copies, not just width x height), a JPEG of too many scans.
The bombs of the availability issue are built here at a hundredth of their size, with limits to match.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from PIL import Image

from app.pipeline import image_header
from app.pipeline.decode import decode_image
from app.pipeline.header_pieces import MAX_HEADER_PIECES
from app.pipeline.image_header import DecodeLimits, inspect_image, jpeg_scale_denominator
from app.pipeline.jpeg_frame import MAX_STRAY_BYTES
from app.settings import Settings
from digits.errors import (
    ImageTooComplexError,
    ImageTooElongatedError,
    ImageTooLargeError,
    UndecodableImageError,
)
from testkit.hostile_images import padded_header, progressive_scan_bomb, strip_png
from testkit.images import encode_with_pillow

pytestmark = pytest.mark.unit

FORMATS = ["PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP"]
MEBIBYTE_BYTES = 1024 * 1024


def blank(image_format: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    return encode_with_pillow(Image.new(mode, size, "white"), image_format)


def webp_header(width: int, height: int) -> bytes:
    """The first 30 bytes of an extended WebP claiming a width x height canvas, and nothing after."""
    sizes = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 22) + b"WEBPVP8X" + struct.pack("<I", 10) + bytes(4) + sizes


def test_the_header_gives_format_size_and_decoded_bytes():
    header = inspect_image(blank("PNG", (300, 200), "L"), DecodeLimits())
    assert (header.image_format, header.width_pixels, header.height_pixels) == ("PNG", 300, 200)
    # an 8-bit grey image, and its read-out into numpy: a few bytes a pixel
    assert 300 * 200 < header.decoded_bytes < 4 * 300 * 200


@pytest.mark.parametrize("image_format", FORMATS)
def test_every_format_is_refused_past_the_pixel_limit(image_format):
    data = blank(image_format, (1000, 1000))
    assert inspect_image(data, DecodeLimits(max_pixels=1_000_000)).width_pixels == 1000
    with pytest.raises(ImageTooLargeError, match="1000x1000 = 1,000,000 pixels; the limit is 999,999"):
        inspect_image(data, DecodeLimits(max_pixels=999_999))


@pytest.mark.parametrize("image_format", FORMATS)
def test_every_format_is_refused_past_the_decoded_bytes_limit(image_format):
    data = blank(image_format, (1000, 1000))
    assert inspect_image(data, DecodeLimits()).decoded_bytes < DecodeLimits().max_decoded_bytes
    with pytest.raises(ImageTooLargeError, match=r"1000x1000 .*the limit is 1 MiB") as refused:
        inspect_image(data, DecodeLimits(max_decoded_bytes=MEBIBYTE_BYTES))
    assert ("WebP" if image_format == "WEBP" else image_format) in refused.value.detail


@pytest.mark.parametrize("image_format", FORMATS)
def test_every_format_is_refused_past_the_aspect_ratio_limit(image_format):
    assert inspect_image(blank(image_format, (320, 10)), DecodeLimits()).width_pixels == 320  # 32:1
    for size in [(330, 10), (10, 330)]:
        with pytest.raises(ImageTooElongatedError, match=r"\d+x\d+ pixels: one side is more than 32 times"):
            inspect_image(blank(image_format, size), DecodeLimits())


@pytest.mark.parametrize(
    ("build", "is_accepted"),
    [
        (lambda: blank("PNG", (1000, 1000), "L"), True),
        (lambda: blank("PNG", (1000, 1000), "P"), True),
        # a transparent palette index makes an RGBA copy: 4 bytes a pixel more
        (lambda: encode_with_pillow(Image.new("P", (1000, 1000)), "PNG", transparency=0), False),
        (lambda: blank("PNG", (1000, 1000), "RGBA"), False),
        (lambda: encode_with_pillow(Image.new("I;16", (1000, 1000)), "PNG"), False),
        (lambda: encode_with_pillow(Image.new("F", (1000, 1000)), "TIFF", compression="tiff_deflate"), False),
    ],
    ids=["grey-png", "palette-png", "palette-png-transparent", "rgba-png", "16-bit-png", "float-tiff"],
)
def test_bytes_per_pixel_and_conversion_copies_count_not_just_the_pixel_count(build, is_accepted):
    # 1,000,000 pixels each: far under a 40-megapixel limit, yet 3 to 16 MB to decode.
    limits = DecodeLimits(max_decoded_bytes=5 * MEBIBYTE_BYTES)
    if is_accepted:
        assert inspect_image(build(), limits).decoded_bytes <= limits.max_decoded_bytes
    else:
        with pytest.raises(ImageTooLargeError, match="would take about"):
            inspect_image(build(), limits)


def test_a_strips_row_pointers_count_so_a_thin_rgba_strip_is_refused():
    # The 1 x 40,000,000 RGBA PNG at a hundredth: Pillow keeps 8 bytes a row per copy.
    limits = DecodeLimits(max_decoded_bytes=8 * MEBIBYTE_BYTES, max_aspect_ratio=1e9)
    assert inspect_image(strip_png(1, 400_000, 1), limits).decoded_bytes < 8 * MEBIBYTE_BYTES
    with pytest.raises(ImageTooLargeError, match="1x400000 RGB with alpha PNG"):
        inspect_image(strip_png(1, 400_000, 4), limits)
    with pytest.raises(ImageTooElongatedError):
        inspect_image(strip_png(1, 400_000, 4), DecodeLimits())


def test_a_scan_bomb_is_refused_from_its_markers():
    with pytest.raises(ImageTooComplexError, match="more than 24 scans"):
        inspect_image(progressive_scan_bomb(side_pixels=64, repeats=2000), DecodeLimits())


def test_a_jpeg_at_the_scan_limit_is_accepted_and_one_over_it_refused():
    progressive = encode_with_pillow(Image.new("RGB", (64, 64)), "JPEG", progressive=True)  # 10 scans
    assert inspect_image(progressive, DecodeLimits(jpeg_max_scans=10)).image_format == "JPEG"
    with pytest.raises(ImageTooComplexError, match="more than 9 scans"):
        inspect_image(progressive, DecodeLimits(jpeg_max_scans=9))


# Pillow reads a header piece by piece in Python, on the event loop: a header of empty pieces must be
# refused before it does (a 10 MB one cost it 1-4 s), and a real header of a few dozen read as ever.
HEADER_PIECE_LIMITS = {"PNG": MAX_HEADER_PIECES, "GIF": MAX_HEADER_PIECES, "TIFF": MAX_HEADER_PIECES}
HEADER_PIECE_LIMITS["JPEG"] = MAX_STRAY_BYTES


@pytest.mark.parametrize("image_format", sorted(HEADER_PIECE_LIMITS))
def test_a_header_of_a_few_dozen_pieces_is_read_and_one_of_too_many_refused(image_format):
    limit = HEADER_PIECE_LIMITS[image_format]
    assert inspect_image(padded_header(image_format, 50), DecodeLimits()).image_format == image_format
    with pytest.raises(ImageTooComplexError, match=f"more than {limit:,} .* before its image data"):
        inspect_image(padded_header(image_format, limit + 1), DecodeLimits())


@pytest.mark.parametrize("image_format", ["PNG", "GIF", "JPEG"])
def test_a_ten_megabyte_header_of_empty_pieces_is_refused_without_reading_it(image_format):
    piece_bytes = {"PNG": 12, "GIF": 3, "JPEG": 1}[image_format]
    hostile = padded_header(image_format, 10 * MEBIBYTE_BYTES // piece_bytes)
    with pytest.raises(ImageTooComplexError):
        inspect_image(hostile, DecodeLimits())


def _jpeg_with_segment(marker: int, payload: bytes) -> bytes:
    """A white 28x28 JPEG with one more segment (marker, payload) right after its start marker."""
    data = encode_with_pillow(Image.new("L", (28, 28), 255), "JPEG")
    return data[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def _exif_with_entries(entry_count: int) -> bytes:
    """An APP1 Exif payload whose first directory has `entry_count` (empty, private) entries."""
    entries = b"".join(struct.pack("<HHII", 40000 + i, 3, 1, 0) for i in range(entry_count))
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<IH", 8, entry_count) + entries + b"\x00" * 4


def test_a_gif_header_of_stray_bytes_is_counted_as_pillow_walks_it():
    # Pillow skips any byte that starts neither an extension nor an image, one read at a time.
    data = padded_header("GIF", 0)
    flags = data[10]
    screen_end = 13 + (3 << ((flags & 0x07) + 1) if flags & 0x80 else 0)
    for padding in (b"\x00" * (MAX_HEADER_PIECES + 1), b"\x00" + b"\x21\xfe\x00" * (MAX_HEADER_PIECES + 1)):
        with pytest.raises(ImageTooComplexError, match="GIF"):
            inspect_image(data[:screen_end] + padding + data[screen_end:], DecodeLimits())
    assert (
        inspect_image(data[:screen_end] + b"\x00" * 10 + data[screen_end:], DecodeLimits()).width_pixels == 28
    )


def test_jpeg_metadata_that_pillow_parses_piece_by_piece_is_bounded():
    photo_block = b"8BIM\x04\x04\x00\x00\x00\x00\x00\x00"  # an empty resource block, 12 bytes
    ordinary = _jpeg_with_segment(0xED, b"Photoshop 3.0\x00" + photo_block * 100)
    assert inspect_image(ordinary, DecodeLimits()).width_pixels == 28
    # Several segments of Photoshop resources add up (each segment holds at most 64 kB).
    segment = b"Photoshop 3.0\x00" + photo_block * 5000
    many = _jpeg_with_segment(0xED, segment)
    many = many[:2] + many[2 : 6 + len(segment)] * 3 + many[2:]
    with pytest.raises(ImageTooComplexError, match="bytes of Photoshop metadata"):
        inspect_image(many, DecodeLimits())
    assert inspect_image(_jpeg_with_segment(0xE1, _exif_with_entries(20)), DecodeLimits()).height_pixels == 28
    with pytest.raises(ImageTooComplexError, match="Exif entries"):
        inspect_image(_jpeg_with_segment(0xE1, _exif_with_entries(MAX_HEADER_PIECES + 1)), DecodeLimits())


@pytest.mark.parametrize(
    "truncated",
    [
        padded_header("PNG", 3)[: 8 + 25 + 5],  # cut inside a chunk's header
        b"GIF89a" + struct.pack("<HHBBB", 28, 28, 0, 0, 0) + b"\x21\xfe\x05ab",  # a sub-block cut short
        b"II*\x00" + struct.pack("<I", 10_000) + b"\x00" * 8,  # a directory past the end
        _jpeg_with_segment(0xE1, b"Exif\x00\x00II*\x00")[:40],  # an Exif header cut short
    ],
)
def test_a_truncated_header_is_a_clean_refusal(truncated):
    with pytest.raises((UndecodableImageError, ImageTooComplexError)):
        inspect_image(truncated, DecodeLimits())


@pytest.mark.parametrize("image_format", ["PNG", "GIF", "JPEG", "TIFF"])
def test_a_header_of_too_many_pieces_is_refused_before_pillow_opens_it(image_format, monkeypatch):
    def must_not_open(*_):
        raise AssertionError("Pillow was asked to read a header that should have been refused")

    monkeypatch.setattr(image_header, "open_image", must_not_open)
    limit = HEADER_PIECE_LIMITS[image_format]
    with pytest.raises(ImageTooComplexError):
        inspect_image(padded_header(image_format, limit + 1), DecodeLimits())


def test_jpeg_fill_bytes_before_a_marker_are_allowed_up_to_the_limit():
    filled = padded_header("JPEG", MAX_STRAY_BYTES)
    assert inspect_image(filled, DecodeLimits()).width_pixels == 28
    assert decode_image(filled).shape == (28, 28)


@pytest.mark.parametrize(
    ("size", "denominator"),
    [((1000, 800), 1), ((2047, 2047), 1), ((2048, 100), 2), ((4096, 3072), 4), ((9000, 9000), 8)],
)
def test_jpegs_are_decoded_reduced_but_never_below_the_working_size(size, denominator):
    assert jpeg_scale_denominator(*size) == denominator


def test_a_large_jpegs_estimate_is_that_of_its_reduced_grey_decode():
    header = inspect_image(blank("JPEG", (4096, 3072)), DecodeLimits())
    assert header.scale_denominator == 4 and header.decoded_size == (1024, 768)
    assert header.decoded_bytes < 4096 * 3072  # less than one byte per stored pixel


def test_a_progressive_jpegs_estimate_holds_its_full_size_coefficients():
    data = encode_with_pillow(Image.new("RGB", (4096, 3072)), "JPEG", progressive=True)
    # 4:2:0 keeps 1.5 blocks of 64 16-bit coefficients per 64 pixels, whatever the DCT scaling
    assert inspect_image(data, DecodeLimits()).decoded_bytes > 3 * 4096 * 3072


def test_a_webps_size_is_checked_before_its_decoder_allocates_canvases():
    # Only a header: nothing after it parses, so a 413 shows the size was refused first.
    with pytest.raises(ImageTooLargeError, match="10000x10000"):
        inspect_image(webp_header(10_000, 10_000), DecodeLimits())
    with pytest.raises(ImageTooLargeError, match="6000x6000 .* WebP"):
        inspect_image(webp_header(6000, 6000), DecodeLimits())  # 36 Mpx: canvases of 432 MB
    with pytest.raises(UndecodableImageError):
        inspect_image(webp_header(100, 100), DecodeLimits())


def png_with_garbage_pixel_data(width: int, height: int) -> bytes:
    """A valid PNG header and an IDAT chunk (with a correct CRC) holding no zlib stream."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", b"\x00 garbage, not a zlib stream")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


def test_inspecting_decodes_no_pixel():
    data = png_with_garbage_pixel_data(40, 50)
    assert inspect_image(data, DecodeLimits()).height_pixels == 50
    with pytest.raises(UndecodableImageError):
        decode_image(data)


def test_the_default_limits_are_the_settings_defaults():
    assert DecodeLimits.from_settings(Settings()) == DecodeLimits()
