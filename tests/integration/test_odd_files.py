"""A corpus of odd uploads, each built here, each with the one status (and code) the service must answer.

Readable oddities (16-bit samples, palettes with transparency, CMYK, progressive JPEG, animations,
multi-page TIFF, a large photo read at reduced size) must be read, and read right: each holds the same
"1". The rest must be refused with their documented 4xx, never a 500: among them the availability
issue's bombs at full size (a scan bomb, a 1 x 40,000,000 strip, a 40-megapixel RGBA PNG) and JPEGs
whose data stops short. A hostile multipart body must be refused without parsing it all.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from testkit.hostile_images import jpeg_segments, progressive_scan_bomb, strip_png
from testkit.images import encode_with_pillow

# Pillow warns about the bomb's header before the service refuses it: expected here.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]

INK, PAPER = 0, 255


def one_on_paper(size: int = 112) -> np.ndarray:
    """A "1" (a bar with a short flag) in dark ink on white paper, (size, size) uint8."""
    image = np.full((size, size), PAPER, dtype=np.uint8)
    step = size // 14
    image[3 * step : 11 * step, 6 * step : 8 * step] = INK
    image[3 * step : 4 * step, 5 * step : 7 * step] = INK
    return image


def gray_png(array: np.ndarray) -> bytes:
    return encode_with_pillow(Image.fromarray(array), "PNG")


def png_16_bit() -> bytes:
    image = Image.fromarray(one_on_paper().astype(np.uint16) * 257)
    assert image.mode == "I;16"
    return encode_with_pillow(image, "PNG")


def palette_png_with_transparency() -> bytes:
    # Index 0 is transparent and *black*: shown as the page behind it (white) by every viewer, but an
    # all-black image to a decoder that drops the transparency.
    indices = np.where(one_on_paper() == INK, 1, 0).astype(np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
    return encode_with_pillow(image, "PNG", transparency=0)


def rgb_one() -> Image.Image:
    return Image.fromarray(one_on_paper()).convert("RGB")


def truncated_jpeg() -> bytes:
    complete = encode_with_pillow(rgb_one(), "JPEG", quality=90)
    return complete[: len(complete) // 2]


def truncated_jpeg_with_end_marker() -> bytes:
    return truncated_jpeg() + b"\xff\xd9"


def jpeg_claiming_6000x6000() -> bytes:
    """A 112x112 JPEG (about 1.5 kB) whose frame header was patched to say 6000x6000."""
    data = encode_with_pillow(rgb_one(), "JPEG", quality=90)
    frame_start = next(start for marker, start, _ in jpeg_segments(data) if marker == 0xC0)
    return data[: frame_start + 5] + struct.pack(">HH", 6000, 6000) + data[frame_start + 9 :]


def animated_gif() -> bytes:
    frames = [Image.fromarray(one_on_paper()).convert("P"), Image.new("P", (112, 112), 255)]
    return encode_with_pillow(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def multi_page_tiff() -> bytes:
    pages = [Image.fromarray(one_on_paper()), Image.new("L", (40, 40), 0)]
    return encode_with_pillow(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def png_bomb(width: int = 10_000, height: int = 10_000) -> bytes:
    """A valid 8-bit grey PNG of width x height zeros: ~100 kB on the wire, 100 megapixels decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def zip_named_png() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("digit.png", gray_png(one_on_paper()))
    return buffer.getvalue()


SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28">'
    b'<path d="M14 4V24" stroke="black"/></svg>'
)

# name -> (build the bytes, expected status, expected code or None for a prediction of "1")
ODD_FILES: dict[str, tuple[Callable[[], bytes], int, str | None]] = {
    "0-byte": (lambda: b"", 400, "empty_file"),
    "1x1": (lambda: gray_png(np.zeros((1, 1), np.uint8)), 422, "no_digit_found"),
    "1x100000": (lambda: gray_png(np.full((100_000, 1), PAPER, np.uint8)), 422, "image_too_elongated"),
    "100000x1-line": (lambda: gray_png(np.zeros((1, 100_000), np.uint8)), 422, "image_too_elongated"),
    "all-white": (lambda: gray_png(np.full((64, 64), PAPER, np.uint8)), 422, "no_digit_found"),
    "all-black": (lambda: gray_png(np.full((64, 64), INK, np.uint8)), 422, "no_digit_found"),
    "16-bit-png": (png_16_bit, 200, None),
    "palette-png-transparency": (palette_png_with_transparency, 200, None),
    "cmyk-jpeg": (lambda: encode_with_pillow(rgb_one().convert("CMYK"), "JPEG", quality=90), 200, None),
    "progressive-jpeg": (
        lambda: encode_with_pillow(rgb_one(), "JPEG", quality=90, progressive=True),
        200,
        None,
    ),
    "truncated-jpeg": (truncated_jpeg, 400, "undecodable_image"),
    "truncated-jpeg-end-marker-appended": (truncated_jpeg_with_end_marker, 400, "undecodable_image"),
    "jpeg-frame-patched-to-6000x6000": (jpeg_claiming_6000x6000, 400, "undecodable_image"),
    "large-jpeg-read-reduced": (
        lambda: encode_with_pillow(Image.fromarray(one_on_paper(2800)), "JPEG", quality=90),
        200,
        None,
    ),
    "animated-gif": (animated_gif, 200, None),
    "multi-page-tiff": (multi_page_tiff, 200, None),
    "svg": (lambda: SVG, 415, "unsupported_image_type"),
    "png-decompression-bomb": (png_bomb, 413, "image_too_large"),
    "jpeg-scan-bomb-6000x6000": (lambda: progressive_scan_bomb(6000, 2000), 413, "image_too_complex"),
    "png-rgba-strip-1x40000000": (lambda: strip_png(1, 40_000_000, 4), 422, "image_too_elongated"),
    "png-rgba-6324x6324": (lambda: strip_png(6324, 6324, 4), 413, "image_too_large"),
    "zip-renamed-png": (zip_named_png, 415, "unsupported_image_type"),
    "text-as-image-png": (lambda: b"the digit seven\n", 415, "unsupported_image_type"),
}


@pytest.mark.parametrize(("build", "status_code", "code"), ODD_FILES.values(), ids=ODD_FILES.keys())
async def test_odd_file_gets_its_expected_answer(service, build, status_code, code):
    data = build()
    response = await service.client.post("/predict", files={"file": ("upload.png", data, "image/png")})
    assert response.status_code == status_code, response.text
    body = response.json()
    if code is None:
        assert body["digit"] == 1 and body["inverted"] is True
    else:
        assert body["code"] == code and len(body["detail"]) > 10


def multipart_body(boundary: str, part_count: int, *, is_file: bool) -> bytes:
    filename = '; filename="x.png"' if is_file else ""
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="file"{filename}\r\n\r\nx\r\n'.encode()
    return part * part_count + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize("is_file", [True, False], ids=["file-parts", "field-parts"])
@pytest.mark.parametrize("route", ["/predict", "/predict/batch", "/read", "/read/batch", "/preprocess"])
async def test_huge_multipart_part_count_is_refused_cheaply(service, route, is_file):
    boundary = "oddfilesboundary"
    body = multipart_body(boundary, 50_000, is_file=is_file)  # ~3 MB, under the 10 MiB body limit
    response = await service.client.post(
        route, content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "bad_request"
    # The parser stops at its limit (1,000 parts): the rest of the body is never parsed or spooled.
    assert "Maximum number of" in response.json()["detail"]
    assert service.sample("digitserve_batch_size_count") == 0
    assert (await service.client.get("/readyz")).status_code == 200
