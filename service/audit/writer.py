"""Writing AuditEvents in batches, off the request's critical path.

Every audited request produces one AuditEvent; writing each in its own transaction cost
more than the read it records. The app owns one ``AuditWriter`` (started and stopped by its
lifespan): requests queue the prepared journal entry and the writer stores what has gathered
in one transaction (``service.audit.journal.append``: one multi-row insert, or a COPY, per
table), at most ``max_delay_s`` after the first event of a batch was queued, or as soon as
``batch_size`` are waiting.

Nothing is dropped quietly. The queue is bounded and a full queue makes the request wait for
space (backpressure), never discards. A batch that fails is logged and retried after a pause;
if it still fails, its events are written one by one so one bad event cannot hold up the
rest, and an event that cannot be written even alone is logged with its full content.
``flush`` waits until everything queued so far is stored (tests and shutdown use it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from service.audit.journal import Entry, append
from service.db.engine import Database

log = logging.getLogger("keyworker.audit")


class AuditWriter:
    def __init__(
        self,
        database: Database,
        *,
        batch_size: int = 200,
        max_delay_s: float = 0.1,
        capacity: int = 10_000,
        retry_delays_s: tuple[float, ...] = (0.1, 0.5, 2.0, 5.0),
    ) -> None:
        self._database = database
        self._batch_size = batch_size
        self._max_delay_s = max_delay_s
        self._retry_delays_s = retry_delays_s
        self._queue: asyncio.Queue[Entry] = asyncio.Queue(capacity)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def submit(self, event: Entry) -> None:
        """Queue one AuditEvent; waits for space when the queue is full."""
        await self._queue.put(event)

    async def flush(self) -> None:
        """Return once every event queued before the call has been written (or logged lost)."""
        await self._queue.join()

    async def stop(self) -> None:
        """Write what is queued, then end the writer task."""
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            batch = await self._gather()
            try:
                await self._write(batch)
            except Exception:  # the writer must outlive any one batch
                log.exception("the audit writer failed on a batch of %d events", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _gather(self) -> list[Entry]:
        """The first event to arrive and what follows it within the delay, up to a batch.

        The writer sleeps out the delay once and then takes what has gathered, rather than
        waiting on the queue for each event: a wake-up per event (a timeout scope and a
        future each time) cost 2% of a busy worker's CPU. Under load the queue holds a batch
        already when the writer comes back, so it writes again at once.
        """
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_delay_s
        while True:
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            remaining = deadline - loop.time()
            if len(batch) >= self._batch_size or remaining <= 0:
                return batch
            await asyncio.sleep(remaining)

    async def _insert(self, batch: list[Entry]) -> None:
        async with self._database.write() as connection:
            await append(connection, batch)

    async def _write(self, batch: list[Entry]) -> None:
        for attempt, delay in enumerate(self._retry_delays_s, start=1):
            try:
                await self._insert(batch)
                return
            except Exception:
                log.exception(
                    "could not write a batch of %d AuditEvents (attempt %d); retrying in %.1f s",
                    len(batch),
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
        for event in batch:
            try:
                await self._insert([event])
            except Exception:
                log.exception(
                    "AuditEvent/%s could not be written and is lost; its content: %s",
                    event.id,
                    event.content.decode(),
                )
