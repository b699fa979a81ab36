"""A Hypothesis strategy: real image files -> damaged copies (bytes flipped, inserted, cut, truncated).

Damage that keeps a real signature and most of a real structure reaches deep into each codec, where
random bytes never get past the first check. The property tests of decode and of decode + preprocess
draw from it with their own seed files.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

MUTATIONS = ("flip", "insert", "delete", "truncate")


@st.composite
def mutated_files(
    draw: st.DrawFn, seeds: Sequence[bytes], max_mutations: int = 3, max_run_bytes: int = 32
) -> bytes:
    """One of `seeds` with 1 to `max_mutations` pieces of damage, each chosen at a drawn position.

    Args:
        draw: Hypothesis' draw function (supplied by `st.composite`).
        seeds: valid files to damage.
        max_mutations: the most pieces of damage applied one after the other.
        max_run_bytes: the longest run of garbage inserted or of bytes deleted at once.

    Returns:
        The damaged file: a byte changed to another value, garbage inserted, a run deleted, or the
        tail cut off at the position (which may leave nothing: an empty upload is damage too).
    """
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, max_mutations))):
        mutation = draw(st.sampled_from(MUTATIONS))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if mutation == "flip" and data:
            # XOR with a non-zero byte: the byte always changes, so no draw is wasted on a no-op.
            data[position] ^= draw(st.integers(1, 255))
        elif mutation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=max_run_bytes))
        elif mutation == "delete":
            del data[position : position + draw(st.integers(1, max_run_bytes))]
        elif mutation == "truncate":
            del data[position:]
    return bytes(data)
