"""Grayscale upload (H, W) uint8 -> canonical digit (28, 28) uint8 white-on-black, MNIST-normalized.

The second stage of the request path: a photo or scan of a digit on paper becomes what the model was
trained on. In order: shrink huge photos; detect polarity (dark ink on light paper, the usual upload,
is inverted); even out the lighting; find the digit (Otsu on a lightly denoised image, then connected
components, dropping specks, page edges and far-away marks) and count the digits written beside it
(`digit_parts`); map paper to 0 and ink to 255; hand the result to `canonicalize_digit` (20x20 box,
center of mass at the center).

The mask only *finds* the digit and blanks the rest; grey levels inside it are kept, so a clean MNIST
digit comes back (nearly) unchanged and serving accuracy on MNIST equals the model's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from app.pipeline.digit_parts import find_digit_parts
from app.pipeline.ink import MIN_INK_CONTRAST, binarize, cut_out, label_components, measure_levels
from digits.canonicalize import canonicalize_digit
from digits.errors import NoDigitFoundError

# Later steps cost time per pixel and the digit ends up 20 pixels tall: past ~1000 pixels, only noise.
MAX_WORKING_SIDE_PIXELS = 1024
# A photo of one digit is looked at this small first, up to twice as large (`preprocess_at_first_look`):
# the usual upload, a digit filling much of the frame, is found and cut out there at a fraction of the
# cost (a 300-pixel JPEG is decoded at 150 pixels straight away, by its DCT scaling)...
FIRST_LOOK_SIDE_PIXELS = 150
# ...and kept when the digit's main stroke spans this much there, twice the 20 pixels it is scaled
# to. A smaller or fainter digit (a tenth of a large photo) is read again at the full working size.
MIN_FIRST_LOOK_DIGIT_PIXELS = 40
# Lighting varies slowly, so the paper's brightness is estimated on a coarse grid (cheap and smooth).
BACKGROUND_GRID_PIXELS = 64
SPECK_AREA_FRACTION = 0.05  # a component with < 5% of the main stroke's area is a speck
NEIGHBOUR_DISTANCE_FRACTION = 0.25  # pieces of one digit (a 5's flag) lie within 1/4 of its size
MIN_DIGIT_EXTENT_FRACTION = 0.04  # a digit spans at least 4% of the photo's longer side
MIN_DIGIT_EXTENT_PIXELS = 3
BORDER_BAND_FRACTION = 0.1  # page edges and frames lie in the outer 10% of the image


@dataclass(frozen=True)
class PreprocessedDigit:
    """The model-ready digit and what was done to get it.

    Attributes:
        canonical: (28, 28) uint8, white ink on black, MNIST-normalized.
        is_inverted: True when the upload was dark ink on light paper and was flipped.
        digit_parts: 1 for one digit; otherwise how many separate digit-sized parts the ink forms side
            by side (the rule: `app.pipeline.digit_parts`). `canonical` is built around the largest
            part either way, as for one digit; what to answer for several is the caller's choice.
    """

    canonical: np.ndarray
    is_inverted: bool
    digit_parts: int = 1


@dataclass(frozen=True)
class FlatUpload:
    """An upload after the stages before binarization.

    Attributes:
        flat: (h, w) uint8, white ink on black, the paper's level subtracted, at the working size.
        is_inverted: True when the upload was dark ink on light paper and was flipped.
        scale: working pixels per upload pixel (1.0 unless a huge photo was shrunk).
        upload_shape: the upload's own (height, width), in its pixels.
    """

    flat: np.ndarray
    is_inverted: bool
    scale: float
    upload_shape: tuple[int, int]


def _shrink(image: np.ndarray, max_side_pixels: int) -> np.ndarray:
    height, width = image.shape
    if (scale := max_side_pixels / max(height, width)) >= 1.0:
        return image
    # INTER_AREA averages, so a thin stroke survives the shrink as a grey line instead of vanishing.
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _shrink_by_whole_factor(image: np.ndarray, min_side_pixels: int) -> np.ndarray:
    """Shrinks by the largest whole factor that keeps the longer side at `min_side_pixels` or more.

    OpenCV averages whole blocks of pixels forty times faster than it resamples by a fraction (0.005
    against 0.19 ms for 300 -> 150 or 160 pixels): the last rows and columns that do not fill a block,
    fewer than the factor, are dropped.
    """
    height, width = image.shape
    factor = max(1, max(height, width) // min_side_pixels)
    if factor == 1:
        return image
    height, width = max(factor, height - height % factor), max(factor, width - width % factor)
    size = (max(1, width // factor), max(1, height // factor))
    return cv2.resize(image[:height, :width], size, interpolation=cv2.INTER_AREA)


def _is_dark_ink_on_light_paper(gray: np.ndarray) -> bool:
    """(H, W) uint8 -> whether the background is the light side of the image's grey levels.

    The background is the majority of the pixels, so the median sits at the paper's level and the
    ink is the extreme far from it: dark ink on light paper leaves the median near the top of the
    range. The 3x3 median filter keeps a few specks of dust or glare from deciding the extremes.
    The border is not used: a photo's border is often the table or a frame, not the paper.
    """
    smoothed = cv2.medianBlur(gray, 3)
    counts = np.cumsum(cv2.calcHist([smoothed], [0], None, [256], [0, 256]).ravel().astype(np.int64))
    median = int(np.searchsorted(counts, counts[-1] / 2))
    darkest, lightest = int(smoothed.min()), int(smoothed.max())
    return median - darkest > lightest - median


def _estimate_background(ink: np.ndarray) -> np.ndarray:
    """(H, W) uint8 white-on-black -> (H, W) float32 in [0, 255], the paper's level under the ink.

    An opening with a kernel of half the image removes the strokes (a smaller one would eat bold
    strokes: 0.5% of MNIST digits hold a 9x9 square of ink, none a 13x13 one) and keeps gradients and
    wide shadows; padding by point reflection runs a gradient on past the edge, where it would be clipped.
    """
    small = _shrink(ink, BACKGROUND_GRID_PIXELS)
    kernel_size_pixels = (min(small.shape) // 2) | 1
    if kernel_size_pixels < 3:  # a sliver of an image has no room for both paper and strokes
        return np.zeros(ink.shape, dtype=np.float32)
    pad = kernel_size_pixels // 2
    padded = np.pad(small.astype(np.float32), pad, mode="reflect", reflect_type="odd")
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel_size_pixels, kernel_size_pixels))
    background = np.clip(cv2.morphologyEx(padded, cv2.MORPH_OPEN, kernel)[pad:-pad, pad:-pad], 0, 255)
    if small.shape == ink.shape:
        return background
    return cv2.resize(background, ink.shape[::-1], interpolation=cv2.INTER_LINEAR)


def _flatten_lighting(ink: np.ndarray, is_inverted: bool) -> np.ndarray:
    """(H, W) uint8 white-on-black -> (H, W) uint8: the ink above the local paper level, evened out.

    Paper reflects light, so a shadow dims ink and paper alike: the excess is divided by the local
    paper brightness (gain capped at 8x, beyond which noise wins). A screen emits light: subtract only.
    """
    background = _estimate_background(ink)
    excess = ink.astype(np.float32)
    excess -= background
    if is_inverted:  # in place, one image-sized buffer: half the time of the plain expression
        gain = np.subtract(255.0, background, out=background)
        np.maximum(gain, 32.0, out=gain)
        np.divide(255.0, gain, out=gain)
        excess *= gain
    np.rint(excess, out=excess)
    return np.clip(excess, 0, 255, out=excess).astype(np.uint8)


def find_border_artifacts(labels: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Component labels and stats -> bool per component: a page edge or frame rather than ink.

    Such a component touches the image border, or reaches across most of it, and either lies mostly in
    the outer band (a frame, the table beyond the page) or spans the image from one side to the
    opposite one (a page edge).
    """
    height, width = labels.shape
    band_pixels = max(1, round(BORDER_BAND_FRACTION * min(height, width)))
    inner = np.zeros_like(labels, dtype=bool)
    inner[band_pixels:-band_pixels, band_pixels:-band_pixels] = True
    in_band_pixels = np.bincount(labels[~inner], minlength=len(stats))
    left, top, box_width, box_height, area = stats.T
    right, bottom = left + box_width == width, top + box_height == height
    touches_border = (left == 0) | (top == 0) | right | bottom
    # A printed box or a frame a few pixels inside the edge touches nothing; it was taken for the
    # digit (the largest component) and the digit itself dropped. It still reaches across the image.
    reaches_across = (box_width >= width - 2 * band_pixels) | (box_height >= height - 2 * band_pixels)
    spans_image = ((left == 0) & right) | ((top == 0) & bottom)
    return (touches_border | reaches_across) & ((in_band_pixels >= 0.5 * area) | spans_image)


def _select_digit_components(strong: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(H, W) bool ink mask -> (H, W) bool mask of the digit's components, the digit parts count, and
    the extent (longer side, pixels) of its main stroke.

    Raises:
        NoDigitFoundError: no component is big enough to be a digit.
    """
    count, labels, stats = label_components(strong)
    extents = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    min_extent = max(MIN_DIGIT_EXTENT_PIXELS, MIN_DIGIT_EXTENT_FRACTION * max(strong.shape))
    candidates = np.arange(count) > 0
    is_ink = candidates & ~find_border_artifacts(labels, stats)
    # A digit may itself touch the border (a tight crop); frames only lose when real ink remains.
    if np.any(is_ink & (extents >= min_extent)):
        candidates = is_ink
    areas = np.where(candidates, stats[:, cv2.CC_STAT_AREA], 0)
    largest = int(np.argmax(areas))
    if areas[largest] == 0 or extents[largest] < min_extent:
        raise NoDigitFoundError("no digit found: the image holds only specks")
    left, top, width, height = stats[:, :4].T
    reach = NEIGHBOUR_DISTANCE_FRACTION * extents[largest]
    gap_x = np.maximum(left - (left[largest] + width[largest]), left[largest] - (left + width))
    gap_y = np.maximum(top - (top[largest] + height[largest]), top[largest] - (top + height))
    is_near = (gap_x <= reach) & (gap_y <= reach)
    is_piece = candidates & (areas >= SPECK_AREA_FRACTION * areas[largest])
    digit_parts = len(find_digit_parts(stats, is_piece, largest))
    return (is_piece & is_near)[labels], digit_parts, int(extents[largest])


def _extract_digit(flat: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(H, W) uint8 flattened ink -> (h, w) uint8 crop (paper 0, ink ~255, all else 0), digit parts
    count, main stroke's extent.

    Raises:
        NoDigitFoundError: no sizeable component, or ink too faint to tell from the paper.
    """
    ink = binarize(flat)
    kept, digit_parts, main_extent = _select_digit_components(ink.strong)
    return cut_out(flat, kept, measure_levels(flat, ink, kept), ink.rim_pixels), digit_parts, main_extent


def preprocess_image(gray: np.ndarray) -> PreprocessedDigit:
    """(H, W) uint8 grayscale photo or scan of one digit -> its canonical MNIST-style image.

    Args:
        gray: (H, W) uint8 in [0, 255], either polarity, any size (huge photos are shrunk first).

    Returns:
        The (28, 28) uint8 white-on-black canonical digit (built around the largest part), whether the
        input was inverted, and how many digits the ink forms side by side.

    Raises:
        NoDigitFoundError: the image is uniform, blank, only specks, or its marks are too faint.
        ValueError: `gray` is not a 2-D uint8 array (a programming error, not bad user input).
    """
    return _read_digit(gray)[0]


def preprocess_at_first_look(gray: np.ndarray) -> PreprocessedDigit | None:
    """`preprocess_image` on the upload shrunk by a whole factor to between FIRST_LOOK_SIDE_PIXELS and
    twice that, or None when no digit there has a main stroke of MIN_FIRST_LOOK_DIGIT_PIXELS: the full
    working size then decides (a small digit, specks only, no digit at all).

    A digit that fills much of a photo is read at 150-300 pixels instead of the photo's own size.
    """
    try:
        digit, main_extent = _read_digit(gray, first_look_side_pixels=FIRST_LOOK_SIDE_PIXELS)
    except NoDigitFoundError:
        return None
    return digit if main_extent >= MIN_FIRST_LOOK_DIGIT_PIXELS else None


def _read_digit(gray: np.ndarray, first_look_side_pixels: int | None = None) -> tuple[PreprocessedDigit, int]:
    """The stages of `preprocess_image` at the size `flatten_upload` gives -> the digit, and the extent
    of its main stroke there."""
    upload = flatten_upload(gray, first_look_side_pixels)
    crop, digit_parts, main_extent = _extract_digit(upload.flat)
    return PreprocessedDigit(canonicalize_digit(crop), upload.is_inverted, digit_parts), main_extent


def flatten_upload(gray: np.ndarray, first_look_side_pixels: int | None = None) -> FlatUpload:
    """(H, W) uint8 grayscale upload -> white ink on black, lighting evened out, at the working size
    (at most MAX_WORKING_SIDE_PIXELS a side; for a first look, shrunk by a whole factor to between
    `first_look_side_pixels` and twice that).

    Raises:
        NoDigitFoundError: the image is (nearly) uniform.
        ValueError: `gray` is not a 2-D uint8 array (a programming error, not bad user input).
    """
    if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 array, got {getattr(gray, 'shape', type(gray))}")
    if gray.size == 0 or int(gray.max()) - int(gray.min()) < MIN_INK_CONTRAST:
        raise NoDigitFoundError("no digit found: the image is (nearly) uniform")
    gray = np.ascontiguousarray(gray)
    if first_look_side_pixels:
        working = _shrink_by_whole_factor(gray, first_look_side_pixels)
    else:
        working = _shrink(gray, MAX_WORKING_SIDE_PIXELS)
    is_inverted = _is_dark_ink_on_light_paper(working)
    ink = cv2.bitwise_not(working) if is_inverted else working
    flat = _flatten_lighting(ink, is_inverted)
    return FlatUpload(flat, is_inverted, working.shape[1] / gray.shape[1], (gray.shape[0], gray.shape[1]))


def encode_png(canonical: np.ndarray) -> bytes:
    """(28, 28) uint8 canonical digit -> PNG file bytes (8-bit grayscale), for the debug endpoint."""
    if canonical.ndim != 2 or canonical.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got {canonical.shape} {canonical.dtype}")
    is_encoded, buffer = cv2.imencode(".png", canonical)
    if not is_encoded:
        raise ValueError(f"OpenCV could not PNG-encode an image of shape {canonical.shape}")
    return buffer.tobytes()
