"""Batching queue + reservations -> whether an image fits: the one owner of the queue's capacity.

Room is counted in images: those queued for the model plus those reserved by requests still decoding
them may not exceed the queue's size. A request reserves room before it decodes its uploads, and its
images then take that room through the `Reservation`, so an admitted request is never refused after
its decoding, and a refusal costs no decoding (503 + Retry-After at once). Reserved images that will
reach the model are also "on their way": a forming batch waits for them (`/preprocess` decodes
without a model call, so its room is held but not waited for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import numpy as np

from digits.errors import QueueFullError


class Submitter(Protocol):
    """Where a reservation's images go (`app.pipeline.batcher.MicroBatcher`)."""

    async def submit(self, image: np.ndarray) -> np.ndarray: ...

    async def submit_many(self, images: Sequence[np.ndarray]) -> list[np.ndarray]: ...


class QueueRoom:
    """Counts the room of a bounded queue, reservations included.

    Args:
        queue: the batching queue; its `maxsize` is the capacity in images.
        retry_after_seconds: the Retry-After sent with a refusal.
    """

    def __init__(self, queue: asyncio.Queue, retry_after_seconds: int) -> None:
        self._queue = queue
        self._retry_after_seconds = retry_after_seconds
        self.reserved_images = 0
        self.images_on_their_way = 0

    def has_room(self, image_count: int = 1) -> bool:
        """Whether `image_count` more images fit beside those queued and those with room reserved."""
        return image_count <= self._queue.maxsize - self._queue.qsize() - self.reserved_images

    def full_error(self) -> QueueFullError:
        """The refusal of a full queue (503), with the configured Retry-After."""
        return QueueFullError(
            f"the prediction queue is full ({self._queue.maxsize} images); retry later",
            retry_after_seconds=self._retry_after_seconds,
        )

    @contextmanager
    def reserve(
        self, image_count: int, submitter: Submitter, *, is_for_model: bool = True
    ) -> Iterator[Reservation]:
        """Holds room for `image_count` images until they are submitted or the block ends.

        Args:
            image_count: images the caller prepares.
            submitter: where the reservation submits them.
            is_for_model: whether the images will be submitted (a forming batch waits for them).

        Raises:
            QueueFullError: no room for `image_count` images (raised at once, nothing held).
        """
        if not self.has_room(image_count):
            raise self.full_error()
        reservation = Reservation(self, submitter, image_count, is_for_model=is_for_model)
        self._hold(image_count, is_for_model)
        try:
            yield reservation
        finally:
            self.release(reservation.give_up(), is_for_model=is_for_model)

    def _hold(self, image_count: int, is_for_model: bool) -> None:
        self.reserved_images += image_count
        self.images_on_their_way += image_count if is_for_model else 0

    def release(self, image_count: int, *, is_for_model: bool) -> None:
        """Gives back room reserved for `image_count` images (only a `Reservation` calls this).

        Raises:
            ValueError: more room given back than is held (a programming error).
        """
        if image_count > self.reserved_images:
            raise ValueError(f"{image_count} images released; room is held for {self.reserved_images}")
        self._hold(-image_count, is_for_model)


class Reservation:
    """Room held in the queue for images being prepared (from `MicroBatcher.reserve`).

    Its images are submitted once, together: room held for uploads that failed to decode goes back
    at that moment, so that no batch waits for them and no other request is refused for them.
    """

    def __init__(
        self, room: QueueRoom, submitter: Submitter, image_count: int, *, is_for_model: bool
    ) -> None:
        self._room = room
        self._submitter = submitter
        self._held_images = image_count
        self._is_for_model = is_for_model

    def give_up(self) -> int:
        """Stops holding the room left and returns how many images it was for."""
        held, self._held_images = self._held_images, 0
        return held

    async def submit(self, image: np.ndarray) -> np.ndarray:
        """`MicroBatcher.submit` into room held here (ValueError when none is left)."""
        self._take(1)
        return await self._submitter.submit(image)

    async def submit_many(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`MicroBatcher.submit_many` into room held here (ValueError when too little is left)."""
        self._take(len(images))
        return await self._submitter.submit_many(images)

    def _take(self, image_count: int) -> None:
        # All the room goes back to the count and the images take theirs before the next await:
        # between the two, no other request can run.
        if image_count > self._held_images:
            raise ValueError(f"{image_count} images submitted into room reserved for {self._held_images}")
        self._room.release(self.give_up(), is_for_model=self._is_for_model)
