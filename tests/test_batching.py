"""Micro-batching (mlem_lib.serve.batching): merged calls, each caller's own rows back."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pandas as pd
import pytest

from mlem_lib.serve.batching import MicroBatcher


class Recorder:
    """A model method that records the size of every call it gets."""

    def __init__(self, fn):
        self.fn = fn
        self.calls: list[int] = []

    def __call__(self, data):
        self.calls.append(len(data))
        return self.fn(data)


def _gather(batcher: MicroBatcher, inputs: list) -> list:
    async def main():
        return await asyncio.gather(*(batcher.submit(x) for x in inputs),
                                    return_exceptions=True)
    return asyncio.run(main())


def test_frames_merge_and_every_caller_gets_its_own_predictions(iris, iris_rf):
    X, _ = iris
    parts = [X.iloc[i * 7:i * 7 + n].reset_index(drop=True) for i, n in enumerate([1, 3, 5, 2])]
    model = Recorder(iris_rf.predict_proba)
    got = _gather(MicroBatcher(model, max_size=64, max_latency=0.05), parts)
    assert model.calls == [11]  # one merged call
    for part, answer in zip(parts, got, strict=True):
        np.testing.assert_array_equal(answer, iris_rf.predict_proba(part))


def test_frame_results_keep_their_own_index():
    model = Recorder(lambda df: df.assign(total=df.sum(axis=1)))
    parts = [pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"a": [3.0]})]
    got = _gather(MicroBatcher(model, max_size=8, max_latency=0.05), parts)
    assert model.calls == [3]
    for part, answer in zip(parts, got, strict=True):
        pd.testing.assert_frame_equal(answer, part.assign(total=part.sum(axis=1)))


def test_arrays_and_lists_merge():
    arrays = Recorder(lambda a: a * 2)
    inputs = [np.arange(4.0).reshape(2, 2), np.ones((1, 2))]
    got = _gather(MicroBatcher(arrays, max_size=8, max_latency=0.05), inputs)
    assert arrays.calls == [3]
    for x, answer in zip(inputs, got, strict=True):
        np.testing.assert_array_equal(answer, x * 2)

    lists = Recorder(lambda xs: [x + 1 for x in xs])
    assert _gather(MicroBatcher(lists, max_size=8, max_latency=0.05), [[1], [2, 3]]) == [
        [2], [3, 4]]
    assert lists.calls == [3]


def test_an_error_in_one_callers_rows_fails_only_that_caller():
    def model(xs):
        if any(x < 0 for x in xs):
            raise ValueError("negative input")
        return [x * 10 for x in xs]

    got = _gather(MicroBatcher(model, max_size=8, max_latency=0.05), [[1], [-1, 2], [3]])
    assert got[0] == [10] and got[2] == [30]
    assert isinstance(got[1], ValueError) and "negative" in str(got[1])


def test_unmergeable_inputs_and_results_run_one_by_one():
    # different columns cannot be merged
    frames = Recorder(lambda df: list(df.columns))
    got = _gather(MicroBatcher(frames, max_size=8, max_latency=0.05),
                  [pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [2]})])
    assert got == [["a"], ["b"]] and frames.calls == [1, 1]
    # a result without one row per input row cannot be cut back: each caller alone
    summary = Recorder(lambda xs: {"n": len(xs)})
    got = _gather(MicroBatcher(summary, max_size=8, max_latency=0.05), [[1, 2], [3]])
    assert got == [{"n": 2}, {"n": 1}]
    # values without rows (a dict, a scalar) are never merged
    scalars = Recorder(lambda d: sorted(d))
    got = _gather(MicroBatcher(scalars, max_size=8, max_latency=0.05), [{"x": 1}, {"y": 2}])
    assert got == [["x"], ["y"]]


def test_max_size_splits_batches():
    model = Recorder(lambda xs: xs)
    got = _gather(MicroBatcher(model, max_size=4, max_latency=0.05), [[i] * 3 for i in range(3)])
    assert got == [[0] * 3, [1] * 3, [2] * 3]
    assert model.calls == [3, 3, 3]


def test_a_lone_caller_does_not_wait_for_company():
    model = Recorder(lambda xs: xs)
    batcher = MicroBatcher(model, max_size=64, max_latency=2.0)

    async def main():
        start = time.perf_counter()
        for i in range(5):
            assert await batcher.submit([i]) == [i]
        return time.perf_counter() - start

    assert asyncio.run(main()) < 1.0  # five sequential calls, none waited the 2 s
    assert model.calls == [1] * 5


@pytest.mark.parametrize("clients", [8])
def test_concurrent_callers_are_merged_under_load(clients):
    model = Recorder(lambda xs: (time.sleep(0.01), [x * 2 for x in xs])[1])
    batcher = MicroBatcher(model, max_size=64, max_latency=0.02)

    async def client(k):
        return [await batcher.submit([k * 100 + i]) for i in range(10)]

    async def main():
        return await asyncio.gather(*(client(k) for k in range(clients)))

    results = asyncio.run(main())
    for k, answers in enumerate(results):
        assert answers == [[(k * 100 + i) * 2] for i in range(10)]
    assert len(model.calls) < clients * 10 / 2  # most calls carried several callers


@pytest.mark.parametrize("cost_s", [0.0, 0.005])
def test_only_a_model_slower_than_a_thread_hop_waits_for_company(cost_s):
    """With requests announced as on their way, a batch waits for them (up to the latency)
    only when merging can save something: a model that answers in microseconds is called
    at once, on the event loop; a 5 ms model waits and merges."""
    model = Recorder(lambda xs: (time.sleep(cost_s), xs)[1])
    batcher = MicroBatcher(model, max_size=64, max_latency=0.5, expected=lambda: 4)

    async def main():
        await batcher.submit([0])  # learns what a call costs
        start = time.perf_counter()
        for i in range(3):
            assert await batcher.submit([i]) == [i]
        return time.perf_counter() - start

    waited = asyncio.run(main())
    assert batcher.cheap() is (cost_s == 0.0)
    if cost_s == 0.0:
        assert waited < 0.3  # none of the three waited the 0.5 s
    else:
        assert waited >= 3 * 0.5  # each waited for the callers announced


def test_a_cheap_model_under_batching_answers_like_without(iris, iris_lr, tmp_path):
    """The server's batched path hands requests to a cheap model straight (same answers)."""
    import orjson

    import mlem_lib.api as mlem
    from mlem_lib.runner import LoadedModel
    from mlem_lib.serve.app import ModelService
    from mlem_lib.serve.settings import ServerSettings

    X, _ = iris
    mlem.save(iris_lr, str(tmp_path / "lr"), sample_data=X)
    service = ModelService(LoadedModel.load(str(tmp_path / "lr")),
                           ServerSettings(metrics=False, batch_max_size=16,
                                          batch_max_latency_ms=50))
    # enough calls for the smoothed cost to forget the first, slow call (imports, caches)
    rows = X.head(30).to_dict("records")

    async def call(row):
        from mlem_lib.serve.app import InFlight

        body = orjson.dumps({"data": {"values": [row]}})
        return await service._serve_batched("predict", body, "application/json", None, True,
                                            True, InFlight())

    async def main():
        return [await call(row) for row in rows]

    answers = asyncio.run(main())
    assert service._batchers["predict"].cheap()
    assert [orjson.loads(a.body)[0] for a in answers] == list(iris_lr.predict(X.head(30)))


def test_only_cheap_methods_run_on_the_event_loop_and_a_few_are_re_timed_there():
    import threading

    threads: list[bool] = []  # per call: did it run on the event loop's thread?
    delay = {"s": 0.003}

    def model(xs):
        threads.append(threading.current_thread() is threading.main_thread())
        time.sleep(delay["s"])
        return xs

    batcher = MicroBatcher(model, max_size=64, max_latency=0.01)

    async def calls(n):
        for i in range(n):
            assert await batcher.submit([i]) == [i]

    asyncio.run(calls(40))  # 3 ms a call: always in a worker thread, never re-timed
    assert not any(threads) and not batcher.cheap()
    delay["s"] = 0.0007  # over 0.5 ms, under 2 ms: one batch in 32 is re-timed on the loop
    threads.clear()
    asyncio.run(calls(64))
    assert 1 <= sum(threads) <= 3 and not batcher.cheap()
    delay["s"] = 0.0  # now cheap: re-timed, then every call runs on the loop
    threads.clear()
    asyncio.run(calls(100))
    assert batcher.cheap() and threads[-10:] == [True] * 10


def test_one_batcher_per_method_whatever_name_the_request_used(tmp_path):
    """A callable's method is ``__call__``; ``/invocations`` asks for it as ``predict``. The
    cheap-model check looked its batcher up by the requested name while batchers are kept by
    the method's name, so every such request made (and replaced) a batcher of its own."""
    import orjson

    import mlem_lib.api as mlem
    from mlem_lib.runner import LoadedModel
    from mlem_lib.serve.app import InFlight, ModelService
    from mlem_lib.serve.settings import ServerSettings

    mlem.save(lambda xs: [2 * x for x in xs], str(tmp_path / "double"), sample_data=[1.0, 2.0])
    service = ModelService(LoadedModel.load(str(tmp_path / "double")),
                           ServerSettings(metrics=False, batch_max_size=16,
                                          batch_max_latency_ms=50))

    async def main():
        answers, batchers = [], []
        for i in range(3):
            r = await service._serve_batched("predict", orjson.dumps([float(i)]),
                                             "application/json", None, False, True, InFlight())
            answers.append(orjson.loads(r.body))
            batchers.append(next(iter(service._batchers.values())))
        return answers, batchers

    answers, batchers = asyncio.run(main())
    assert answers == [[0.0], [2.0], [4.0]]
    assert list(service._batchers) == ["__call__"]
    assert batchers[0] is batchers[1] is batchers[2]
