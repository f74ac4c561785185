"""Adaptive micro-batching: concurrent requests to one method merged into one model call.

Each request is decoded and validated on its own; its rows then wait in a queue. One
worker per method takes the first waiting request and, when recent batches showed that
requests come together (or others are being read right now), waits up to
``max_latency`` for more, until ``max_size`` rows or as many requests as the last batch
had. A lone client therefore never waits: its request runs at once, as without batching.

The merged rows go to the model in one call (in a worker thread, so the server keeps
reading requests); the result is cut back into each caller's rows. The cost of a call is
measured: a model that answers faster than a hop to a thread (a one-row linear model)
never waits for company and runs on the event loop, since merging could not save it
anything. Nothing is merged
that cannot be cut back exactly: inputs must be tables, arrays or lists of the same
shape and dtypes, and the result must have one row per input row; otherwise, and when
the merged call raises, every request is called on its own, so each caller gets its
own rows back and an error in one caller's rows fails only that caller.

Example:
    >>> import asyncio
    >>> calls = []
    >>> def model(rows):
    ...     calls.append(len(rows))
    ...     return [2 * r for r in rows]
    >>> async def main():
    ...     batcher = MicroBatcher(model, max_size=16, max_latency=0.05)
    ...     return await asyncio.gather(*(batcher.submit([i, i]) for i in range(4)))
    >>> asyncio.run(main()), calls
    ([[0, 0], [2, 2], [4, 4], [6, 6]], [8])
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: batches whose call takes less than this run on the event loop (a thread hop costs more)
INLINE_CALL_S = 0.0005


def rows_of(value: Any) -> int | None:
    """The number of rows of a batchable value (a table, an array, a list), else None."""
    if isinstance(value, list):
        return len(value)
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) >= 1 and hasattr(value, "__len__"):
        return int(shape[0])
    return None


def _signature(value: Any) -> Any:
    """What must match for two inputs to be merged: kind, columns, dtypes, row shape."""
    if isinstance(value, list):
        return ("list",)
    columns = getattr(value, "columns", None)
    if columns is not None:
        return ("frame", tuple(columns), tuple(str(d) for d in value.dtypes))
    if hasattr(value, "dtypes"):  # a Series
        return ("series", str(value.dtype), value.name)
    return ("array", str(value.dtype), tuple(value.shape[1:]))


def concat(parts: list[Any]) -> Any:
    """The rows of every part, in order, as one value of the same kind."""
    first = parts[0]
    if isinstance(first, list):
        return [row for part in parts for row in part]
    if hasattr(first, "iloc"):
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    import numpy as np

    return np.concatenate(parts, axis=0)


def take(result: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of a merged result, indexed as a call on those rows alone."""
    if hasattr(result, "iloc"):
        part = result.iloc[start:stop]
        import pandas as pd

        if isinstance(result.index, pd.RangeIndex):
            part = part.reset_index(drop=True)
        return part
    return result[start:stop]


@dataclass
class _Request:
    data: Any
    rows: int | None
    future: asyncio.Future[Any]


@dataclass
class MicroBatcher:
    """Merges concurrent calls of ``call`` (one model method) into one call.

    Args:
        call: the model method; called in a worker thread with one input.
        max_size: most rows in one merged call.
        max_latency: longest wait, in seconds, for more requests to join a batch.
        expected: how many requests are on their way but not queued yet (being read or
            decoded); the server passes its in-flight count.
    """

    call: Callable[[Any], Any]
    max_size: int
    max_latency: float
    expected: Callable[[], int] = lambda: 0
    _queue: deque[_Request] = field(default_factory=deque)
    _wakeup: asyncio.Event | None = None
    _worker: asyncio.Task[None] | None = None
    _last_batch: int = 1
    _cost: float | None = None  # smoothed seconds of one batch's call
    _since_probe: int = 0
    busy: int = 0  # requests taken by the worker and not answered yet

    async def submit(self, data: Any) -> Any:
        """The caller's own result (or its own exception) for ``data``."""
        loop = asyncio.get_running_loop()
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run())
        request = _Request(data, rows_of(data), loop.create_future())
        self._queue.append(request)
        self._wakeup.set()
        return await request.future

    def cheap(self) -> bool:
        """Whether the method's calls have been cheaper than a hop to a thread."""
        return self._cost is not None and self._cost < INLINE_CALL_S

    def _probe(self) -> bool:
        """Whether to run this batch on the event loop to measure it again: a call timed in
        a worker thread also counts its waits for the GIL, so a cheap model timed once under
        contention would stay "expensive"; one batch in 32 of a method under 2 ms is re-timed
        without them."""
        if self._cost is None or self._cost >= 4 * INLINE_CALL_S:
            return False
        self._since_probe += 1
        if self._since_probe < 32:
            return False
        self._since_probe = 0
        return True

    def waiting(self) -> int:
        """Requests queued, not yet taken into a batch."""
        return len(self._queue)

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = [self._queue.popleft()]
            size = batch[0].rows or 0
            deadline = loop.time() + self.max_latency
            while size < self.max_size and batch[0].rows is not None:
                if self._queue:
                    nxt = self._queue[0]
                    if nxt.rows is None or size + nxt.rows > self.max_size:
                        break
                    batch.append(self._queue.popleft())
                    size += nxt.rows
                    continue
                # wait only while more requests are coming: being read now, or as many
                # as joined the last batch (a lone client never waits); never for a model
                # that answers faster than a thread hop: merging cannot save it anything
                if self.cheap():
                    break
                on_their_way = self.expected() - self.busy - len(batch)
                if on_their_way <= 0 and len(batch) >= self._last_batch:
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            self._last_batch = len(batch)
            self.busy += len(batch)
            try:
                if self.cheap() or self._probe():
                    outcomes = self._timed(batch)  # cheaper than a hop to a thread
                else:
                    outcomes = await loop.run_in_executor(None, self._timed, batch)
            except Exception as exc:  # never leave a caller waiting
                outcomes = [(False, exc)] * len(batch)
            finally:
                self.busy -= len(batch)
            for request, (ok, value) in zip(batch, outcomes, strict=True):
                if request.future.done():  # the caller went away
                    continue
                if ok:
                    request.future.set_result(value)
                else:
                    request.future.set_exception(value)

    def _timed(self, batch: list[_Request]) -> list[tuple[bool, Any]]:
        """``_execute``, keeping a smoothed cost of one batch (a cheap model's batches then
        run on the event loop: a thread hop would cost more than the call)."""
        start = time.perf_counter()
        try:
            return self._execute(batch)
        finally:
            spent = time.perf_counter() - start
            self._cost = spent if self._cost is None else 0.8 * self._cost + 0.2 * spent

    def _execute(self, batch: list[_Request]) -> list[tuple[bool, Any]]:
        """Run one batch in a worker thread: merged when that is exact, else one by one."""
        if len(batch) > 1 and self._mergeable(batch):
            sizes = [r.rows or 0 for r in batch]
            try:
                result = self.call(concat([r.data for r in batch]))
            except Exception:
                result = None  # find out whose rows fail: each caller on its own below
            else:
                if rows_of(result) == sum(sizes):
                    out, start = [], 0
                    for n in sizes:
                        out.append((True, take(result, start, start + n)))
                        start += n
                    return out
        return [self._one(r.data) for r in batch]

    def _one(self, data: Any) -> tuple[bool, Any]:
        try:
            return True, self.call(data)
        except Exception as exc:
            return False, exc

    @staticmethod
    def _mergeable(batch: list[_Request]) -> bool:
        if any(r.rows is None for r in batch):
            return False
        first = _signature(batch[0].data)
        return all(_signature(r.data) == first for r in batch[1:])
