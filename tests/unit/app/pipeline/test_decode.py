"""decode_image turns upload bytes into an upright (H, W) uint8 grayscale image, or a domain error.

Every image here is made in the test, with Pillow or OpenCV, from a small asymmetric "digit": a dark
bar on white paper with a dark corner mark at the top left, so that a lost orientation, a swapped
colour channel or a misread alpha channel all show up as a different array.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from app.pipeline.decode import decode_image
from app.pipeline.image_header import DecodeLimits
from app.pipeline.preprocess import preprocess_image
from digits.errors import (
    DigitServeError,
    EmptyUploadError,
    ImageTooComplexError,
    ImageTooElongatedError,
    ImageTooLargeError,
    UndecodableImageError,
    UnsupportedImageTypeError,
)
from testkit.hostile_images import jpeg_segments, progressive_scan_bomb, strip_png
from testkit.images import encode_with_opencv, encode_with_pillow

pytestmark = pytest.mark.unit

# JPEG at quality 95 on large flat blocks moves a grey level by a few units, never by tens.
JPEG_TOLERANCE_LEVELS = 12
EXIF_ORIENTATION_TAG = 0x0112


def make_digit_page() -> np.ndarray:
    """(30, 20) uint8: white paper, a black vertical bar and a black 4x4 mark in the top-left corner."""
    page = np.full((30, 20), 255, dtype=np.uint8)
    page[6:26, 9:13] = 0
    page[0:4, 0:4] = 0
    return page


PAGE = make_digit_page()


def max_difference(decoded: np.ndarray, expected: np.ndarray) -> int:
    assert decoded.shape == expected.shape
    return int(np.abs(decoded.astype(np.int16) - expected.astype(np.int16)).max())


def png_chunk(chunk_type: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(chunk_type + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + chunk_type + payload + struct.pack(">I", crc)


def make_zero_png(width: int, height: int, *, is_pixel_data_corrupt: bool = False) -> bytes:
    """A valid 1-bit grayscale PNG of zeros, built chunk by chunk: huge images in a few kilobytes."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    pixel_data = b"".join(compressor.compress(row * 100) for _ in range(height // 100))
    pixel_data += compressor.compress(row * (height % 100)) + compressor.flush()
    if is_pixel_data_corrupt:
        pixel_data = b"\x00garbage, not a zlib stream" + pixel_data[30:]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        [png_chunk(b"IHDR", header), png_chunk(b"IDAT", pixel_data), png_chunk(b"IEND", b"")]
    )


def lossless_encodings() -> dict[str, bytes]:
    gray = Image.fromarray(PAGE)
    return {
        "png-pillow": encode_with_pillow(gray, "PNG"),
        "png-opencv": encode_with_opencv(PAGE, ".png"),
        "bmp-pillow": encode_with_pillow(gray, "BMP"),
        "bmp-opencv-bgr": encode_with_opencv(cv2.cvtColor(PAGE, cv2.COLOR_GRAY2BGR), ".bmp"),
        "webp-lossless-pillow": encode_with_pillow(gray.convert("RGB"), "WEBP", lossless=True),
        "webp-lossless-opencv": encode_with_opencv(PAGE, ".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
        "tiff-pillow": encode_with_pillow(gray, "TIFF"),
        "tiff-opencv": encode_with_opencv(PAGE, ".tiff"),
        "gif-pillow": encode_with_pillow(gray, "GIF"),
        "png-bilevel": encode_with_pillow(gray.convert("1"), "PNG"),
        "png-2-bit": encode_with_pillow(gray, "PNG", bits=2),
        "tiff-float-0-to-1": encode_with_pillow(Image.fromarray(PAGE.astype(np.float32) / 255), "TIFF"),
    }


LOSSLESS = lossless_encodings()


@pytest.mark.parametrize("name", sorted(LOSSLESS))
def test_decode_reads_each_lossless_format_pixel_for_pixel(name):
    decoded = decode_image(LOSSLESS[name])
    assert decoded.dtype == np.uint8 and decoded.ndim == 2 and decoded.flags.c_contiguous
    np.testing.assert_array_equal(decoded, PAGE)


@pytest.mark.parametrize(
    "data",
    [
        encode_with_pillow(Image.fromarray(PAGE).convert("RGB"), "JPEG", quality=95),
        encode_with_pillow(Image.fromarray(PAGE).convert("RGB"), "JPEG", quality=95, progressive=True),
        encode_with_pillow(Image.fromarray(PAGE).convert("CMYK"), "JPEG", quality=95),
        encode_with_opencv(PAGE, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]),
        encode_with_opencv(PAGE, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        encode_with_pillow(Image.fromarray(PAGE).convert("RGB"), "WEBP", quality=95),
    ],
    ids=["jpeg", "jpeg-progressive", "jpeg-cmyk", "jpeg-opencv", "jpeg-opencv-progressive", "webp-lossy"],
)
def test_decode_reads_lossy_formats_within_compression_error(data):
    decoded = decode_image(data)
    assert decoded.dtype == np.uint8 and decoded.flags.c_contiguous
    # A CMYK JPEG read without Adobe's inversion would come back as a negative: difference 255.
    assert max_difference(decoded, PAGE) <= JPEG_TOLERANCE_LEVELS


def test_decode_converts_colour_to_luma_with_channels_in_the_right_order():
    bgr = np.full((10, 10, 3), 255, dtype=np.uint8)
    bgr[:, :5] = (255, 0, 0)  # pure blue in OpenCV's BGR order
    decoded = decode_image(encode_with_opencv(bgr, ".png"))
    # ITU-R 601 luma of pure blue is 0.114 * 255 = 29; reading BGR as RGB would give red's 76.
    assert set(np.unique(decoded[:, :5])) == {29}
    assert set(np.unique(decoded[:, 5:])) == {255}


@pytest.mark.parametrize(
    ("orientation", "upright"),
    [(3, np.rot90(PAGE, 2)), (6, np.rot90(PAGE, -1)), (8, np.rot90(PAGE, 1))],
    ids=["3-upside-down", "6-rotate-clockwise", "8-rotate-counterclockwise"],
)
def test_decode_applies_the_exif_orientation_of_a_phone_photo(orientation, upright):
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    photo = Image.fromarray(PAGE).convert("RGB")
    decoded = decode_image(encode_with_pillow(photo, "JPEG", quality=95, exif=exif.tobytes()))
    assert decoded.shape == upright.shape
    assert max_difference(decoded, upright) <= JPEG_TOLERANCE_LEVELS


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_decode_keeps_the_stored_orientation_when_the_exif_block_is_corrupt():
    broken_exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00"
    data = encode_with_pillow(Image.fromarray(PAGE).convert("RGB"), "JPEG", quality=95, exif=broken_exif)
    assert max_difference(decode_image(data), PAGE) <= JPEG_TOLERANCE_LEVELS


def ink_alpha() -> np.ndarray:
    """Alpha of PAGE's ink: 255 where the page is black, 0 on the paper."""
    return np.where(PAGE == 0, 255, 0).astype(np.uint8)


def test_decode_composites_black_ink_on_a_transparent_background_onto_white():
    # The transparent pixels are black too, as drawing apps save them: only alpha tells ink from paper.
    rgba = np.dstack([np.zeros((30, 20, 3), dtype=np.uint8), ink_alpha()])
    np.testing.assert_array_equal(decode_image(encode_with_pillow(Image.fromarray(rgba), "PNG")), PAGE)


def test_decode_composites_grayscale_with_alpha_onto_white():
    gray_alpha = np.dstack([np.zeros((30, 20), dtype=np.uint8), ink_alpha()])
    data = encode_with_pillow(Image.fromarray(gray_alpha, mode="LA"), "PNG")
    np.testing.assert_array_equal(decode_image(data), PAGE)


def test_decode_blends_half_transparent_ink_halfway_to_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 3] = 128
    assert set(np.unique(decode_image(encode_with_pillow(Image.fromarray(rgba), "PNG")))) == {127}


@pytest.mark.parametrize("image_format", ["PNG", "GIF"])
def test_decode_shows_the_transparent_palette_index_as_white_paper(image_format):
    indices = np.where(PAGE == 0, 1, 0).astype(np.uint8)
    palette_image = Image.fromarray(indices, mode="P")
    palette_image.putpalette([0, 0, 0] * 256)  # every index is black: index 0 is paper only by transparency
    data = encode_with_pillow(palette_image, image_format, transparency=0)
    np.testing.assert_array_equal(decode_image(data), PAGE)


def test_decode_composites_16_bit_rgba_onto_white():
    rgba = np.zeros((30, 20, 4), dtype=np.uint16)
    rgba[..., 3] = ink_alpha().astype(np.uint16) * 257
    np.testing.assert_array_equal(decode_image(encode_with_opencv(rgba, ".png")), PAGE)


def test_decode_scales_16_bit_grayscale_to_8_bit():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    wide = levels.astype(np.uint16) * 257  # 0 -> 0, 255 -> 65535
    for data in (encode_with_opencv(wide, ".png"), encode_with_pillow(Image.fromarray(wide), "PNG")):
        np.testing.assert_array_equal(decode_image(data), levels)


def test_decode_scales_16_bit_colour_to_8_bit():
    wide = np.dstack([PAGE.astype(np.uint16) * 257] * 3)
    np.testing.assert_array_equal(decode_image(encode_with_opencv(wide, ".png")), PAGE)


def test_decode_reads_the_first_frame_of_an_animated_gif():
    frames = [Image.fromarray(PAGE).convert("P"), Image.fromarray(255 - PAGE).convert("P")]
    data = encode_with_pillow(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    np.testing.assert_array_equal(decode_image(data), PAGE)


def test_decode_reads_the_first_page_of_a_multi_page_tiff():
    pages = [Image.fromarray(PAGE), Image.fromarray(255 - PAGE), Image.new("L", (64, 64), 128)]
    data = encode_with_pillow(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert Image.open(io.BytesIO(data)).n_frames == 3
    np.testing.assert_array_equal(decode_image(data), PAGE)


def test_decode_reads_the_first_frame_of_an_animated_webp():
    frames = [Image.fromarray(PAGE).convert("RGB"), Image.fromarray(255 - PAGE).convert("RGB")]
    data = encode_with_pillow(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    np.testing.assert_array_equal(decode_image(data), PAGE)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF"])
def test_decode_reads_a_1x1_image(image_format):
    decoded = decode_image(encode_with_pillow(Image.new("RGB", (1, 1), (90, 90, 90)), image_format))
    assert decoded.shape == (1, 1) and decoded.dtype == np.uint8 and decoded.flags.c_contiguous
    assert abs(int(decoded[0, 0]) - 90) <= 2


@pytest.mark.parametrize("kept_fraction", [0.3, 0.6, 0.9])
def test_decode_rejects_truncated_jpeg(kept_fraction):
    data = encode_with_pillow(Image.fromarray(PAGE).convert("RGB"), "JPEG", quality=95)
    with pytest.raises(UndecodableImageError):
        decode_image(data[: int(len(data) * kept_fraction)])


@pytest.mark.parametrize("kept_fraction", [0.3, 0.6, 0.9])
def test_decode_rejects_truncated_png(kept_fraction):
    noisy = np.random.default_rng(0).integers(0, 256, (60, 60), dtype=np.uint8)  # incompressible
    data = encode_with_pillow(Image.fromarray(noisy), "PNG")
    with pytest.raises(UndecodableImageError):
        decode_image(data[: int(len(data) * kept_fraction)])


def test_decode_rejects_an_image_signature_followed_by_garbage():
    with pytest.raises(UndecodableImageError):
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\x00 not really a png " * 20)


def test_decode_rejects_unknown_binary_bytes_as_undecodable():
    with pytest.raises(UndecodableImageError, match="unknown file signature"):
        decode_image(bytes([0x00, 0xFE, 0x81, 0x02]) * 64)


def test_decode_rejects_zero_bytes_as_an_empty_upload():
    with pytest.raises(EmptyUploadError):
        decode_image(b"")


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("digit.png", LOSSLESS["png-pillow"])
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "named_as"),
    [
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><text>7</text></svg>', "SVG"),
        (b'\xef\xbb\xbf  <svg width="28" height="28"></svg>', "SVG"),
        (zip_archive(), "ZIP"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
        (b"seven\n", "plain text"),
        ("sept, écrit à la main\n".encode(), "plain text"),
        (b"<html><body><img src='7.png'></body></html>", "HTML"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "RIFF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
    ],
    ids=["svg", "svg-with-bom", "zip", "pdf", "text", "text-utf8", "html", "wav", "heic"],
)
def test_decode_rejects_non_image_and_unsupported_files_as_unsupported_type(data, named_as):
    with pytest.raises(UnsupportedImageTypeError, match=named_as):
        decode_image(data)


def test_decode_refuses_a_png_decompression_bomb_over_the_pixel_limit():
    bomb = make_zero_png(7_000, 7_000)  # 49 megapixels in a few kilobytes
    assert len(bomb) < 16_000
    with pytest.raises(ImageTooLargeError, match="7000x7000"):
        decode_image(bomb, max_image_pixels=40_000_000)


def test_decode_refuses_a_huge_png_bomb_even_with_a_generous_limit():
    # 400 megapixels: over Pillow's own hard cap too, which decode reports as the same 413 error.
    with pytest.raises(ImageTooLargeError):
        decode_image(make_zero_png(20_000, 20_000), max_image_pixels=10**12)


def test_decode_checks_the_pixel_count_before_reading_any_pixel():
    # Corrupt pixel data would be a 400 once decoding starts: a 413 proves it never started.
    bomb = make_zero_png(7_000, 7_000, is_pixel_data_corrupt=True)
    with pytest.raises(ImageTooLargeError):
        decode_image(bomb, max_image_pixels=40_000_000)
    with pytest.raises(UndecodableImageError):
        decode_image(make_zero_png(70, 70, is_pixel_data_corrupt=True))


def test_decode_reads_an_image_exactly_at_the_pixel_limit():
    decoded = decode_image(make_zero_png(300, 200), max_image_pixels=60_000)
    assert decoded.shape == (200, 300) and not decoded.any()
    with pytest.raises(ImageTooLargeError):
        decode_image(make_zero_png(300, 200), max_image_pixels=59_999)


# --- what the header must refuse before decoding ---


def test_decode_refuses_a_progressive_jpeg_scan_bomb():
    # The bomb (the smallest scan repeated 2,000 times) on a smaller page: a pass per scan.
    with pytest.raises(ImageTooComplexError, match="more than 24 scans"):
        decode_image(progressive_scan_bomb(side_pixels=256, repeats=2000))


def test_decode_refuses_a_thin_strip_as_too_elongated_to_hold_a_digit():
    with pytest.raises(ImageTooElongatedError, match="1x400000"):
        decode_image(strip_png(1, 400_000, 4))


def test_decode_refuses_what_would_take_more_memory_than_allowed():
    data = encode_with_pillow(Image.new("RGBA", (1000, 1000)), "PNG")
    with pytest.raises(ImageTooLargeError, match="the limit is 2 MiB"):
        decode_image(data, DecodeLimits(max_decoded_bytes=2 * 1024 * 1024))


# --- JPEGs: decoded reduced, and never from data that stops short ---


def draw_seven(height: int, width: int) -> np.ndarray:
    """A photo-like "7": a thick dark stroke on noisy, unevenly lit grey paper, (height, width) uint8."""
    rng = np.random.default_rng(7)
    paper = np.linspace(215, 235, width, dtype=np.float32)[None, :].repeat(height, axis=0)
    page = np.clip(paper + rng.normal(0, 4, (height, width)), 0, 255).astype(np.uint8)
    corner = (int(width * 0.35), int(height * 0.25))
    top_right, foot = (int(width * 0.65), corner[1]), (int(width * 0.45), int(height * 0.8))
    cv2.polylines(page, [np.array([corner, top_right, foot])], False, 40, thickness=height // 25)
    return page


def test_decode_reads_a_large_jpeg_at_reduced_size_into_the_same_digit():
    data = encode_with_opencv(draw_seven(1600, 2100), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90])
    reduced = decode_image(data)
    full_size = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    assert reduced.shape == (800, 1050)  # DCT scaling by 2: a quarter of the pixels decoded
    digit, reference = preprocess_image(reduced).canonical, preprocess_image(full_size).canonical
    assert np.mean(np.abs(digit.astype(int) - reference.astype(int))) < 2.0
    assert np.count_nonzero((digit > 0) != (reference > 0)) <= 0.03 * np.count_nonzero(reference)


def patch_frame_size(data: bytes, width: int, height: int) -> bytes:
    frame_start = next(start for marker, start, _ in jpeg_segments(data) if marker in (0xC0, 0xC2))
    return data[: frame_start + 5] + struct.pack(">HH", height, width) + data[frame_start + 9 :]


def one_on_paper_jpeg(mode: str, is_progressive: bool) -> bytes:
    page = np.full((112, 112), 255, dtype=np.uint8)
    page[24:88, 48:64] = 0
    page[24:32, 40:48] = 0
    return encode_with_pillow(
        Image.fromarray(page).convert(mode), "JPEG", quality=90, progressive=is_progressive
    )


JPEG_KINDS = {
    "baseline-colour": ("RGB", False),
    "baseline-grey": ("L", False),
    "progressive-colour": ("RGB", True),
    "progressive-grey": ("L", True),
}


@pytest.mark.parametrize("kind", JPEG_KINDS)
def test_decode_refuses_a_small_jpeg_whose_frame_claims_6000x6000(kind):
    data = one_on_paper_jpeg(*JPEG_KINDS[kind])
    assert len(data) < 1500 and decode_image(data).shape == (112, 112)
    with pytest.raises(UndecodableImageError, match="6000x6000"):
        decode_image(patch_frame_size(data, 6000, 6000))


def cuts_through_the_image_data(data: bytes) -> list[int]:
    """Offsets at 10%, 50% and 90% of each scan's entropy-coded data (if it holds 8 bytes or more),
    and at each segment after the first scan: a progressive JPEG cut there is a valid, coarser image
    to a decoder."""
    cuts, first_scan_end = [], None
    for marker, start, end in jpeg_segments(data):
        if first_scan_end is not None and marker != 0xD9:
            cuts.append(start)
        if marker == 0xDA:
            data_start = start + 2 + struct.unpack(">H", data[start + 2 : start + 4])[0]
            if end - data_start >= 8:
                cuts += [data_start + (end - data_start) * percent // 100 for percent in (10, 50, 90)]
            first_scan_end = first_scan_end or end
    return cuts


@pytest.mark.parametrize("kind", JPEG_KINDS)
def test_decode_refuses_a_jpeg_cut_short_with_an_end_marker_appended(kind):
    # libjpeg fills what a scan lacks with grey, and only warns: never a digit from such a file.
    data = one_on_paper_jpeg(*JPEG_KINDS[kind])
    for cut in cuts_through_the_image_data(data):
        with pytest.raises(UndecodableImageError):
            decode_image(data[:cut] + b"\xff\xd9")


@pytest.mark.parametrize("kind", JPEG_KINDS)
def test_decode_reads_a_jpeg_with_bytes_after_its_end_marker(kind):
    data = one_on_paper_jpeg(*JPEG_KINDS[kind])
    trailer = b"camera trailer \x00\xff\x01" * 10  # some cameras append data after EOI
    np.testing.assert_array_equal(decode_image(data + trailer), decode_image(data))


def test_decode_reads_a_jpeg_with_restart_markers():
    data = encode_with_pillow(
        Image.fromarray(PAGE).convert("RGB"), "JPEG", quality=95, restart_marker_blocks=1
    )
    assert max_difference(decode_image(data), PAGE) <= JPEG_TOLERANCE_LEVELS


def test_decode_refuses_a_jpeg_without_its_end_marker():
    data = one_on_paper_jpeg("RGB", False)
    with pytest.raises(UndecodableImageError, match="truncated"):
        decode_image(data[:-2])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_decode_turns_every_exif_orientation_upright_as_pillow_does(orientation):
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    data = encode_with_pillow(Image.fromarray(PAGE), "PNG", exif=exif.tobytes())
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    np.testing.assert_array_equal(decode_image(data), upright)


# --- details name the problem, never a library's internals ---

LIBRARY_INTERNALS = re.compile(r"0x[0-9a-fA-F]{6,}|<.*object at|Error\b|PIL|Pillow|BytesIO|\bI;16|errno")


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + b"\x00 not really a png " * 20,
        LOSSLESS["png-pillow"][:60],
        LOSSLESS["tiff-pillow"][:40],
        LOSSLESS["gif-pillow"][:30] + bytes(30),
        b"GIF89a" + bytes(20),
        b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(30),
        encode_with_pillow(Image.fromarray(PAGE).convert("RGB"), "JPEG")[:300],
    ],
    ids=[
        "png-garbage",
        "png-truncated",
        "tiff-truncated",
        "gif-zeroed",
        "gif-header",
        "webp-garbage",
        "jpeg-cut",
    ],
)
def test_decode_details_name_the_problem_in_plain_words(data):
    with pytest.raises(DigitServeError) as refused:
        decode_image(data)
    assert not LIBRARY_INTERNALS.search(refused.value.detail), refused.value.detail
