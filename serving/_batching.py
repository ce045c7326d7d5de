"""Adaptive micro-batching: concurrent requests share one forward pass.

Requests queue on the event loop; one task forms a batch and runs it in a single inference thread, so the
loop keeps accepting requests while the model computes (requests arriving meanwhile form the next batch).
The wait is adaptive: a batch waits (at most ``max_wait_ms``) for more requests only while fewer have
arrived than the previous batch held, i.e. only under concurrent load. A lone client therefore never
waits (not even one sending many texts per request), and under load each batch fills to the recent
concurrency instead of waiting out the timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Served(Generic[R]):
    """A request's results and the batch that computed them."""

    results: list[R]
    batch_size: int  # instances in the batch (this request's and the others')
    batch_requests: int
    queued_ms: float  # from submit to the batch's start


@dataclass
class _Pending:
    items: list[Any]
    future: asyncio.Future
    submitted: float = field(default_factory=time.perf_counter)


class MicroBatcher(Generic[T, R]):
    """``await batcher.submit(items)`` -> ``Served``; ``run(items) -> results`` is called with whole batches.

    ``run`` must return one result per item, in order. A request larger than ``max_batch_size`` runs as a
    batch of its own, in chunks of ``max_batch_size``.
    """

    def __init__(
        self,
        run: Callable[[list[T]], Sequence[R]],
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        on_batch: Callable[[int, int], None] | None = None,
    ):
        if max_batch_size < 1:
            raise ValueError(f"`max_batch_size` must be >= 1, but got {max_batch_size=}.")
        if max_wait_ms < 0:
            raise ValueError(f"`max_wait_ms` must be >= 0, but got {max_wait_ms=}.")
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self._on_batch = on_batch
        self._pending: deque[_Pending] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._target = 1  # requests the next batch waits for: the last batch's count
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    def call(self, items: list[T]) -> list[R]:
        """Run ``items`` in the inference thread, outside any batch (warm-up)."""
        return self._executor.submit(self._chunked, items).result()

    async def submit(self, items: Sequence[T]) -> Served[R]:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._arrived = asyncio.Event()
            self._task = loop.create_task(self._loop(), name="micro-batcher")
        pending = _Pending(list(items), loop.create_future())
        self._pending.append(pending)
        self._arrived.set()
        return await pending.future

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _chunked(self, items: list[T]) -> list[R]:
        out: list[R] = []
        for start in range(0, len(items), self.max_batch_size):
            chunk = items[start : start + self.max_batch_size]
            results = list(self._run(chunk))
            if len(results) != len(chunk):
                raise RuntimeError(
                    f"the batch function returned {len(results)} results for {len(chunk)} items"
                )
            out += results
        return out

    async def _next_batch(self) -> list[_Pending]:
        loop = asyncio.get_running_loop()
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
        batch = [self._pending.popleft()]
        size = len(batch[0].items)
        deadline = loop.time() + self.max_wait
        while size < self.max_batch_size:
            if self._pending:
                if size + len(self._pending[0].items) > self.max_batch_size:
                    break  # it leads the next batch
                batch.append(self._pending.popleft())
                size += len(batch[-1].items)
                continue
            remaining = deadline - loop.time()
            if len(batch) >= self._target or remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                break
        self._target = len(batch)
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            items = [item for pending in batch for item in pending.items]
            started = time.perf_counter()
            if self._on_batch is not None:
                self._on_batch(len(batch), len(items))
            try:
                results = await loop.run_in_executor(self._executor, self._chunked, items)
            except Exception as error:  # the requests of this batch fail; the batcher keeps serving
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                continue
            offset = 0
            for pending in batch:
                count = len(pending.items)
                if not pending.future.done():  # a client that went away cancelled its future
                    pending.future.set_result(
                        Served(
                            results[offset : offset + count],
                            batch_size=len(items),
                            batch_requests=len(batch),
                            queued_ms=(started - pending.submitted) * 1000.0,
                        )
                    )
                offset += count
