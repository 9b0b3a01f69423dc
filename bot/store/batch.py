"""Group commit: many concurrent single-row writes coalesced into one statement and one transaction.

Under a burst of callbacks every request writes a row or two (its message id, its answer). Written one by one,
each pays a connection checkout, a round trip through the driver and a commit; coalesced, a burst of 32
requests pays that once. There is no timer: while one batch is being written the next callers queue up and
go together in the next batch, so a lone caller waits for nothing but its own write.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class Coalescer(Generic[ItemT, ResultT]):
    """Turn concurrent ``submit(item)`` calls into ``run_batch([items…])`` calls, one batch at a time.

    ``run_batch`` returns one result per item, in order. If it raises, every caller of that batch gets the
    exception. Items whose caller went away are still written (the batch is already under way).
    """

    def __init__(self, run_batch: Callable[[Sequence[ItemT]], Awaitable[Sequence[ResultT]]], *, max_batch: int = 256):
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._pending: list[tuple[ItemT, asyncio.Future[ResultT] | None]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: ItemT) -> ResultT:
        """Write ``item`` with whatever else is waiting; its result."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._kick()
        return await future

    def submit_nowait(self, item: ItemT) -> None:
        """Queue ``item`` without waiting for it (write-behind); failures are logged. ``flush`` waits."""
        self._pending.append((item, None))
        self._kick()

    async def flush(self) -> None:
        """Wait until everything queued so far has been written."""
        while self._task is not None:
            await asyncio.shield(self._task)

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            # a context of its own: a batch serves many messages and must not join any one's unit of work
            self._task = asyncio.get_running_loop().create_task(
                self._drain(), name="group-commit", context=contextvars.Context()
            )

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    results = await self._run_batch([item for item, _ in batch])
                except Exception as exc:
                    waiting = [f for _, f in batch if f is not None and not f.done()]
                    for failed in waiting:
                        failed.set_exception(exc)
                    if len(waiting) < len(batch):
                        log.warning("a write-behind batch failed: %s", type(exc).__name__)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future is not None and not future.done():
                        future.set_result(result)
        finally:
            self._task = None
