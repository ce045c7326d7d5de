"""The micro-batcher on its own: grouping, order, limits, the adaptive wait, failures."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from serving._batching import MicroBatcher


class Recorder:
    """A batch function that records the batches it sees and can be slowed down or made to fail."""

    def __init__(self, delay: float = 0.0):
        self.batches: list[list[str]] = []
        self.delay = delay
        self.fail_on: str | None = None
        self.threads: set[str] = set()

    def __call__(self, items: list[str]) -> list[str]:
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(items))
        if self.fail_on in items:
            raise RuntimeError("boom")
        time.sleep(self.delay)
        return [item.upper() for item in items]


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_are_grouped_and_get_their_own_results():
    recorder = Recorder(delay=0.02)
    batcher = MicroBatcher(recorder, max_batch_size=64, max_wait_ms=50)

    async def main():
        return await asyncio.gather(*(batcher.submit([f"r{i}-a", f"r{i}-b"]) for i in range(16)))

    served = run(main())
    batcher.close()
    for i, result in enumerate(served):
        assert result.results == [f"R{i}-A", f"R{i}-B"]
    assert len(recorder.batches) < 16  # grouped
    assert sum(len(b) for b in recorder.batches) == 32
    assert max(s.batch_requests for s in served) > 1
    assert recorder.threads == {"inference_0"}  # one inference thread, off the event loop


def test_batches_never_exceed_max_batch_size():
    recorder = Recorder(delay=0.005)
    batcher = MicroBatcher(recorder, max_batch_size=8, max_wait_ms=20)

    async def main():
        return await asyncio.gather(*(batcher.submit([f"x{i}", f"y{i}", f"z{i}"]) for i in range(20)))

    served = run(main())
    batcher.close()
    assert all(len(batch) <= 8 for batch in recorder.batches)
    assert all(s.batch_size <= 8 for s in served)
    assert [s.results for s in served] == [[f"X{i}", f"Y{i}", f"Z{i}"] for i in range(20)]


def test_a_request_larger_than_a_batch_runs_in_chunks():
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=8, max_wait_ms=0)
    items = [str(i) for i in range(20)]
    served = run(batcher.submit(items))
    batcher.close()
    assert [len(b) for b in recorder.batches] == [8, 8, 4]
    assert served.results == items and served.batch_size == 20


def test_a_lone_client_never_waits_for_company():
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=32, max_wait_ms=500)

    async def main():
        started = time.perf_counter()
        for i in range(5):
            await batcher.submit([f"t{i}"])
        return time.perf_counter() - started

    elapsed = run(main())
    batcher.close()
    assert elapsed < 0.4  # five sequential requests; one 500 ms wait would exceed it
    assert [len(b) for b in recorder.batches] == [1, 1, 1, 1, 1]


def test_under_load_a_batch_waits_for_the_recent_concurrency():
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=32, max_wait_ms=300)

    async def spaced(count: int, gap: float):
        async def one(i: int):
            await asyncio.sleep(gap * i)
            return await batcher.submit([f"s{i}"])

        return await asyncio.gather(*(one(i) for i in range(count)))

    async def timed_lone_request() -> float:
        started = time.perf_counter()
        await batcher.submit(["lone"])
        return time.perf_counter() - started

    async def main():
        await spaced(4, 0.0)  # 4 at once: one batch of 4
        await spaced(4, 0.02)  # 4 arriving 20 ms apart: the batch waits for all 4 (greedy: 4 batches of 1)
        first = await timed_lone_request()  # the load is gone: this one waits out max_wait once ...
        second = await timed_lone_request()  # ... and then no more
        return first, second

    first, second = run(main())
    batcher.close()
    assert [len(b) for b in recorder.batches] == [4, 4, 1, 1]
    assert first >= 0.25 and second < 0.15


def test_a_failing_batch_fails_its_requests_and_the_batcher_keeps_serving():
    recorder = Recorder()
    recorder.fail_on = "bad"
    batcher = MicroBatcher(recorder, max_batch_size=8, max_wait_ms=0)

    async def main():
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.submit(["bad"])
        return await batcher.submit(["good"])

    assert run(main()).results == ["GOOD"]
    batcher.close()


@pytest.mark.parametrize(("kwargs", "message"), [({"max_batch_size": 0}, "max_batch_size"),
                                                 ({"max_wait_ms": -1}, "max_wait_ms")])  # fmt: skip
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MicroBatcher(Recorder(), **kwargs)
