"""Batching queue + reservations -> whether an upload fits: the one owner of the queue's capacity.

Room is counted in units: each image queued for the model takes one, and each upload being prepared
holds one at the door plus, once its header is read, one per `cost_unit_pixels` of decoding work
(`Reservation.add_cost`), so a 40-megapixel upload holds the room of many small ones while it is
decoded. Queued images and held units together may not exceed the queue's size. A request reserves
room before it decodes its uploads, and its images then take that room through the `Reservation`,
so an admitted request is never refused after its decoding, and a refusal costs no decoding (503 +
Retry-After at once). Reserved images that will reach the model are also "on their way": a forming
batch waits for them (`/preprocess` decodes without a model call, so its room is held but not
waited for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import numpy as np

from digits.errors import PayloadTooLargeError, QueueFullError


class Submitter(Protocol):
    """Where a reservation's images go (`app.pipeline.batcher.MicroBatcher`)."""

    async def submit(self, image: np.ndarray) -> np.ndarray: ...

    async def submit_many(self, images: Sequence[np.ndarray]) -> list[np.ndarray]: ...


class QueueRoom:
    """Counts the room of a bounded queue, reservations included.

    Args:
        queue: the batching queue; its `maxsize` is the capacity in units.
        retry_after_seconds: the Retry-After sent with a refusal.
        on_change: called with the room in use (`used_units`) after each change of the reservations.
    """

    def __init__(
        self, queue: asyncio.Queue, retry_after_seconds: int, on_change: Callable[[int], None]
    ) -> None:
        self._queue = queue
        self._retry_after_seconds = retry_after_seconds
        self._on_change = on_change
        self.reserved_units = 0
        self.images_on_their_way = 0

    @property
    def capacity_units(self) -> int:
        """The queue's size: most units queued and held at once."""
        return self._queue.maxsize

    @property
    def used_units(self) -> int:
        """Room in use: images queued plus units held by uploads being prepared."""
        return self._queue.qsize() + self.reserved_units

    def has_room(self, unit_count: int = 1) -> bool:
        """Whether `unit_count` more units fit beside those queued and those held."""
        return unit_count <= self._queue.maxsize - self.used_units

    def full_error(self) -> QueueFullError:
        """The refusal of a full queue (503), with the configured Retry-After."""
        return QueueFullError(
            f"the prediction queue is full ({self._queue.maxsize} units of work); retry later",
            retry_after_seconds=self._retry_after_seconds,
        )

    @contextmanager
    def reserve(
        self, image_count: int, submitter: Submitter, *, is_for_model: bool = True
    ) -> Iterator[Reservation]:
        """Holds one unit for each of `image_count` uploads until they are submitted or the block ends.

        Args:
            image_count: uploads the caller prepares.
            submitter: where the reservation submits their images.
            is_for_model: whether the images will be submitted (a forming batch waits for them).

        Raises:
            QueueFullError: no room for `image_count` units (raised at once, nothing held).
        """
        waited_images = image_count if is_for_model else 0
        reservation = Reservation(self, submitter, waited_images)
        reservation.add_cost(image_count)
        self._change(0, waited_images)
        try:
            yield reservation
        finally:
            reservation.give_up()

    def _change(self, unit_change: int, image_change: int) -> None:
        if self.reserved_units + unit_change < 0 or self.images_on_their_way + image_change < 0:
            raise ValueError("more room given back than was held")  # a programming error
        self.reserved_units += unit_change
        self.images_on_their_way += image_change
        self._on_change(self.used_units)


class Reservation:
    """Room held in the queue for uploads being prepared (from `MicroBatcher.reserve`).

    Its images are submitted once, together: room held for uploads that failed to decode goes back
    at that moment, so that no batch waits for them and no other request is refused for them.
    """

    def __init__(self, room: QueueRoom, submitter: Submitter, waited_images: int) -> None:
        self._room = room
        self._submitter = submitter
        self._held_units = 0
        self._waited_images = waited_images

    @property
    def spare_capacity_units(self) -> int:
        """How many more units this request could ever hold: the queue's size less what it holds."""
        return self._room.capacity_units - self._held_units

    def add_cost(self, unit_count: int) -> None:
        """Holds `unit_count` more units, e.g. for a large image once its header is read.

        Raises:
            PayloadTooLargeError: the request would hold more than the whole queue: it could never
                be admitted, so retrying is pointless (413, not 503).
            QueueFullError: no room for them now (nothing more is held; what was held stays held).
        """
        self._hold(
            unit_count,
            lambda capacity: (
                f"decoding these uploads takes {self._held_units + unit_count} units of work; the service "
                f"admits at most {capacity} at once: send fewer or smaller images"
            ),
        )

    def add_images(self, image_count: int) -> None:
        """Holds room for `image_count` more images than reserved: the cut-outs of a number, known
        only once its upload is segmented. A forming batch waits for them too.

        Raises:
            PayloadTooLargeError: more than the whole queue (413): the request could never be read.
            QueueFullError: no room for them now.
        """
        cut_outs, other_units = self._waited_images + image_count, self._held_units - self._waited_images
        self._hold(
            image_count,
            lambda capacity: (
                f"reading this upload takes {cut_outs} cut-outs through the model, beside {other_units} "
                f"units of decoding; the service admits at most {capacity} at once: send fewer digits"
            ),
        )
        self._waited_images += image_count
        self._room._change(0, image_count)

    def _hold(self, unit_count: int, describe_excess: Callable[[int], str]) -> None:
        """Holds `unit_count` more units; past the whole queue, 413 with `describe_excess(capacity)`."""
        if unit_count > self.spare_capacity_units:
            raise PayloadTooLargeError(describe_excess(self._room.capacity_units))
        if not self._room.has_room(unit_count):
            raise self._room.full_error()
        self._held_units += unit_count
        self._room._change(unit_count, 0)

    def give_up(self) -> None:
        """Gives back all the room held (at submission, or when the request ends without one)."""
        held_units, waited_images = self._held_units, self._waited_images
        self._held_units = self._waited_images = 0
        if held_units or waited_images:
            self._room._change(-held_units, -waited_images)

    async def submit(self, image: np.ndarray) -> np.ndarray:
        """`MicroBatcher.submit` into room held here (ValueError when none was reserved for it)."""
        if not self._waited_images:
            raise ValueError("an image submitted into room reserved for none")
        self.give_up()
        return await self._submitter.submit(image)

    async def submit_many(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`MicroBatcher.submit_many` into room held here (ValueError for more images than reserved)."""
        if len(images) > self._waited_images:
            raise ValueError(f"{len(images)} images submitted into room reserved for {self._waited_images}")
        # The room goes back and the images take theirs before the next await: between the two, no
        # other request can run, and a request's images never need more room than it held.
        self.give_up()
        return await self._submitter.submit_many(images)
