"""MNIST digit (28, 28) uint8 white-on-black -> pen strokes: lists of (row, column) points on its grid.

The browser tests redraw real MNIST digits on the page's pad the way a person would: one continuous
pointer movement per stroke along the middle of the ink, with the page's own pen width. The ink is
thresholded and thinned to a one-pixel skeleton (Zhang-Suen), then the skeleton's 8-connected pixels
are walked into paths that use each link between neighbouring pixels exactly once.
"""

from __future__ import annotations

import numpy as np

INK_THRESHOLD = 128
# (row, column) offsets of the 8 neighbours P2..P9 in Zhang-Suen order: N, NE, E, SE, S, SW, W, NW.
NEIGHBOUR_OFFSETS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))

Point = tuple[int, int]


def _neighbour_planes(image: np.ndarray) -> list[np.ndarray]:
    """(H, W) 0/1 array -> the 8 arrays P2..P9 of each pixel's neighbours (zero outside the image)."""
    padded = np.pad(image, 1)
    height, width = image.shape
    return [padded[1 + dr : 1 + dr + height, 1 + dc : 1 + dc + width] for dr, dc in NEIGHBOUR_OFFSETS]


def thin_to_skeleton(ink: np.ndarray) -> np.ndarray:
    """(H, W) bool ink mask -> (H, W) bool skeleton, one pixel wide (Zhang & Suen, 1984)."""
    skeleton = ink.astype(np.uint8)
    for _ in range(max(ink.shape)):  # each pass peels at least one layer; more than H passes never happen
        changed = False
        for is_second_step in (False, True):
            p2, p3, p4, p5, p6, p7, p8, p9 = _neighbour_planes(skeleton)
            neighbours = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            transitions = sum((ring[i] == 0) & (ring[i + 1] == 1) for i in range(8))
            if is_second_step:
                is_corner_free = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            else:
                is_corner_free = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            removable = (skeleton == 1) & (neighbours >= 2) & (neighbours <= 6)
            removable &= (transitions == 1) & is_corner_free
            if removable.any():
                skeleton[removable] = 0
                changed = True
        if not changed:
            break
    return skeleton.astype(bool)


def trace_strokes(skeleton: np.ndarray) -> list[list[Point]]:
    """(H, W) bool skeleton -> strokes, each a list of 8-connected (row, column) points.

    Every link between two neighbouring skeleton pixels is drawn exactly once; a stroke starts at
    the topmost-leftmost pixel with an odd number of unused links (a line end) when there is one, as
    a hand starts at the end of a line, and an isolated pixel becomes a one-point stroke (a dot).
    """
    pixels = {(int(row), int(column)) for row, column in np.argwhere(skeleton)}
    links: dict[Point, set[Point]] = {
        (row, column): {(row + dr, column + dc) for dr, dc in NEIGHBOUR_OFFSETS} & pixels
        for row, column in pixels
    }
    strokes = [[pixel] for pixel in sorted(pixels) if not links[pixel]]
    while any(links.values()):
        open_pixels = sorted(pixel for pixel, linked in links.items() if linked)
        line_ends = [pixel for pixel in open_pixels if len(links[pixel]) % 2 == 1]
        stroke = [(line_ends or open_pixels)[0]]
        while links[stroke[-1]]:
            here = stroke[-1]
            # Straight neighbours first: a hand follows the line rather than cutting its corners.
            after = min(
                links[here], key=lambda there: (abs(there[0] - here[0]) + abs(there[1] - here[1]), there)
            )
            links[here].discard(after)
            links[after].discard(here)
            stroke.append(after)
        strokes.append(stroke)
    return strokes


def strokes_of_digit(digit: np.ndarray) -> list[list[Point]]:
    """MNIST digit (28, 28) uint8, white ink on black -> the strokes that redraw it (see module doc)."""
    return trace_strokes(thin_to_skeleton(digit >= INK_THRESHOLD))
