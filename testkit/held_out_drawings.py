"""A canvas size (height, width) and a generator -> a held-out scribble or texture, ink coverage (H, W)
float32 in [0, 1].

The model's training scribbles are Bezier curves, blots, digit fragments, noise, stripes and grids;
these come from other generators: random walks, spirals, zig-zag hatching, sine waves and Lissajous
figures drawn as pen strokes, and checkerboard, wood-grain, brick-wall and crosshatch textures on a
patch of the page. Lissajous figures with frequency ratios 1:1 (an ellipse: a 0) and 1:2 (a figure
of eight: an 8) are never drawn: a person would read them as digits.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Size = tuple[int, int]  # (height, width) in pixels
# Frequency pairs that make knots, none of them a 0 or an 8 (see the module docstring).
LISSAJOUS_RATIOS = ((3, 2), (2, 3), (3, 4), (4, 3), (5, 4), (4, 5), (3, 5), (5, 3), (5, 6))
# Pen drawings keep off the canvas's edges (5 % of each side), as a photo frames what it shows; ink on
# the edge would be taken by the service for the page's edge.
MARGIN_FRACTION = 0.05
# Lines of a texture lie at least 4 line widths apart: the paper stays the larger part of a swatch.
MIN_LINE_SPACING_THICKNESSES = 4.0
MIN_RING_PERIOD_PIXELS = 8.0  # finer wood grain blurs into a grey patch
_SUBPIXEL_BITS = 4  # cv2 draws at 1/16 pixel, so thin curves stay smooth


def _draw_polyline(size: Size, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 2) float x, y points -> (H, W) coverage of a pen stroke through them, 1.2-3.5 % of the side
    (2 pixels at least)."""
    canvas = np.zeros(size, dtype=np.uint8)
    thickness = max(2, round(rng.uniform(0.012, 0.035) * min(size)))
    fixed = np.rint(points * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.polylines(canvas, [fixed], False, 255, thickness, cv2.LINE_AA, _SUBPIXEL_BITS)
    return canvas.astype(np.float32) / 255.0


def _fit_inside(size: Size, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scales and moves (N, 2) points to fill 50-90 % of the canvas inside its margins, at a random spot."""
    margins = MARGIN_FRACTION * np.array(size[::-1])  # x, y
    inside = np.array(size[::-1]) - 1 - 2 * margins
    low, high = points.min(axis=0), points.max(axis=0)
    scale = rng.uniform(0.5, 0.9) * np.min(inside / np.maximum(high - low, 1e-6))
    fitted = (points - low) * scale
    return fitted + margins + rng.uniform(0.0, 1.0, size=2) * (inside - fitted.max(axis=0))


def _rotated(points: np.ndarray, angle_radians: float) -> np.ndarray:
    cosine, sine = np.cos(angle_radians), np.sin(angle_radians)
    return points @ np.array([[cosine, sine], [-sine, cosine]])


def draw_random_walk(size: Size, rng: np.random.Generator) -> np.ndarray:
    """A tangle: 80-200 steps whose heading turns a little at random at each step."""
    steps = rng.integers(80, 201)
    headings = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, 0.7, size=steps))
    points = np.cumsum(np.stack([np.cos(headings), np.sin(headings)], axis=1), axis=0)
    return _draw_polyline(size, _fit_inside(size, points, rng), rng)


def draw_spiral(size: Size, rng: np.random.Generator) -> np.ndarray:
    """An Archimedean spiral of 2.5-5 turns, squashed up to 2:1 and turned."""
    angles = np.linspace(0.0, 2 * np.pi * rng.uniform(2.5, 5.0), 400)
    radii = angles * (1 if rng.random() < 0.5 else -1)
    points = np.stack([radii * np.cos(angles), radii * np.sin(angles) * rng.uniform(0.5, 1.0)], axis=1)
    return _draw_polyline(size, _fit_inside(size, _rotated(points, rng.uniform(0, np.pi)), rng), rng)


def draw_hatching(size: Size, rng: np.random.Generator) -> np.ndarray:
    """Shading: 6-16 back-and-forth strokes, as when a pen fills an area without lifting."""
    strokes = rng.integers(6, 17)
    along = np.where(np.arange(strokes) % 2 == 0, 0.0, 1.0) + rng.normal(0.0, 0.05, size=strokes)
    across = np.arange(strokes) * rng.uniform(0.08, 0.16) + rng.normal(0.0, 0.01, size=strokes)
    points = np.stack([along, across], axis=1)
    return _draw_polyline(size, _fit_inside(size, _rotated(points, rng.uniform(0, np.pi)), rng), rng)


def draw_sine_waves(size: Size, rng: np.random.Generator) -> np.ndarray:
    """1-3 stacked waves of 1.5-4 periods, tilted by up to 20 degrees."""
    x = np.linspace(0.0, 1.0, 200)
    cycles, amplitude, phase = rng.uniform(1.5, 4.0), rng.uniform(0.06, 0.15), rng.uniform(0, 2 * np.pi)
    waves = [
        np.stack([x, amplitude * np.sin(2 * np.pi * cycles * x + phase) + row * 3 * amplitude], axis=1)
        for row in range(rng.integers(1, 4))
    ]
    tilt = np.deg2rad(rng.uniform(-20.0, 20.0))
    coverage = np.zeros(size, dtype=np.float32)
    fitted = _fit_inside(size, _rotated(np.concatenate(waves), tilt), rng)
    for wave in np.split(fitted, len(waves)):
        coverage = np.maximum(coverage, _draw_polyline(size, wave, rng))
    return coverage


def draw_lissajous(size: Size, rng: np.random.Generator) -> np.ndarray:
    """A Lissajous figure x = sin(a t + phase), y = sin(b t), (a, b) from LISSAJOUS_RATIOS."""
    a, b = LISSAJOUS_RATIOS[rng.integers(len(LISSAJOUS_RATIOS))]
    times = np.linspace(0.0, 2 * np.pi, 600)
    points = np.stack([np.sin(a * times + rng.uniform(0.2, 1.4)), np.sin(b * times)], axis=1)
    return _draw_polyline(size, _fit_inside(size, _rotated(points, rng.uniform(-0.3, 0.3)), rng), rng)


def _turned_coordinates(size: Size, angle_radians: float) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float32 pixel coordinates u, v along and across the direction `angle_radians`."""
    rows, columns = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    cosine, sine = np.cos(angle_radians), np.sin(angle_radians)
    return columns * cosine + rows * sine, rows * cosine - columns * sine


def _patch_mask(size: Size, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32: 1 on a rectangle of 50-100 % of each side (a swatch on the page), 0 elsewhere."""
    height, width = size
    patch_height, patch_width = (np.array(size) * rng.uniform(0.5, 1.0, size=2)).astype(int)
    top, left = rng.integers(0, height - patch_height + 1), rng.integers(0, width - patch_width + 1)
    mask = np.zeros(size, dtype=np.float32)
    mask[top : top + patch_height, left : left + patch_width] = 1.0
    return mask


def draw_checkerboard(size: Size, rng: np.random.Generator) -> np.ndarray:
    """Turned squares of 5-15 % of the side, alternately inked."""
    u, v = _turned_coordinates(size, rng.uniform(0, np.pi))
    cell = rng.uniform(0.05, 0.15) * min(size)
    return ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32) * _patch_mask(size, rng)


def draw_wood_grain(size: Size, rng: np.random.Generator) -> np.ndarray:
    """Dark growth rings around a far-off center, bent by smooth noise, as in a plank."""
    u, v = _turned_coordinates(size, rng.uniform(0, np.pi))
    center = rng.uniform(-1.5, 1.5, size=2) * min(size)
    radius = np.hypot(u - center[0], (v - center[1]) * rng.uniform(0.1, 0.4))
    bend = cv2.resize(
        rng.normal(0.0, 1.0, size=(6, 6)).astype(np.float32), size[::-1], interpolation=cv2.INTER_CUBIC
    )
    period = max(rng.uniform(0.04, 0.1) * min(size), MIN_RING_PERIOD_PIXELS)
    rings = np.sin(2 * np.pi * (radius / period + 0.6 * bend))
    return np.clip((rings - 0.4) / 0.6, 0.0, 1.0).astype(np.float32) * _patch_mask(size, rng)


def _line_coverage(distance: np.ndarray, thickness_pixels: float) -> np.ndarray:
    """Distance to the nearest line's middle, in pixels -> anti-aliased ink coverage of that line."""
    return np.clip(thickness_pixels / 2 - distance + 0.5, 0.0, 1.0)


def draw_bricks(size: Size, rng: np.random.Generator) -> np.ndarray:
    """The mortar lines of a brick wall: courses 8-16 % of the side high, each offset by half a brick."""
    u, v = _turned_coordinates(size, rng.uniform(0, np.pi))
    thickness = rng.uniform(1.5, 3.5)
    course = max(rng.uniform(0.08, 0.16) * min(size), MIN_LINE_SPACING_THICKNESSES * thickness)
    brick = course * rng.uniform(1.8, 2.6)
    across_courses = np.abs((v % course) - course / 2)
    shifted_u = u + (np.floor(v / course) % 2) * brick / 2
    across_joints = np.abs((shifted_u % brick) - brick / 2)
    coverage = np.maximum(
        _line_coverage(course / 2 - across_courses, thickness),
        _line_coverage(brick / 2 - across_joints, thickness),
    )
    return coverage.astype(np.float32) * _patch_mask(size, rng)


def draw_crosshatch(size: Size, rng: np.random.Generator) -> np.ndarray:
    """Two families of parallel pen lines crossing at 60-120 degrees, 5-10 % of the side apart."""
    first_angle = rng.uniform(0, np.pi)
    second_angle = first_angle + np.deg2rad(rng.uniform(60.0, 120.0))
    thickness = rng.uniform(1.5, 3.0)
    spacing = max(rng.uniform(0.05, 0.1) * min(size), MIN_LINE_SPACING_THICKNESSES * thickness)
    coverage = np.zeros(size, dtype=np.float32)
    for angle in (first_angle, second_angle):
        distance = np.abs((_turned_coordinates(size, angle)[0] % spacing) - spacing / 2)
        coverage = np.maximum(coverage, _line_coverage(distance, thickness))
    return coverage * _patch_mask(size, rng)


DRAWINGS: dict[str, Callable[[Size, np.random.Generator], np.ndarray]] = {
    "random_walk": draw_random_walk,
    "spiral": draw_spiral,
    "hatching": draw_hatching,
    "sine_waves": draw_sine_waves,
    "lissajous": draw_lissajous,
    "checkerboard": draw_checkerboard,
    "wood_grain": draw_wood_grain,
    "bricks": draw_bricks,
    "crosshatch": draw_crosshatch,
}
