"""Benchmark: streaming ``mlem apply`` over iris-shaped Parquet vs the raw in-memory call.

For 1M and 5M rows it measures, each in a fresh subprocess (so peak RSS is that run's
own high-water mark, from ``resource.getrusage(RUSAGE_SELF)``):

* ``raw predict``: the whole file already in a DataFrame, one ``model.predict`` call
  (only the call is timed; its RSS includes the loaded data);
* ``raw read+predict+write``: ``pd.read_parquet`` + ``predict`` + ``to_parquet``, all in
  memory, i.e. what a script without mlem_lib would do;
* ``mlem apply``: :func:`mlem_lib.batch.apply_file` from Parquet to Parquet, streamed.

Module imports (pandas, pyarrow, mlem_lib's batch modules) and a warm-up run of each path
on 1000 rows happen before the timer in every mode.

Usage:
    .venv/bin/python bench/apply.py [--rows 1000000 5000000] [--batch-size N] [--repeat 3]

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _peak_rss_mb() -> float:
    """This process's peak RSS. ``VmHWM`` where there is /proc: Linux carries ``ru_maxrss``
    over ``exec`` from the parent that spawned us, which would hide our own peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(mode: str, data: str, model: str, out: str, batch_size: int | None) -> dict[str, Any]:
    import pandas as pd
    import pyarrow.parquet

    import mlem_lib.api as mlem
    import mlem_lib.batch
    import mlem_lib.formats
    import mlem_lib.sinks  # noqa: F401
    from mlem_lib.runner import LoadedModel

    # Imports and a warm-up run on 1000 rows happen before any timer starts, in every mode:
    # the table compares steady-state throughput, not first-call costs.
    loaded = LoadedModel.load(model)
    warm = out + ".warm.parquet"
    first = next(pyarrow.parquet.ParquetFile(data).iter_batches(batch_size=1000))
    first.to_pandas().to_parquet(warm, index=False)
    loaded.model.predict(pd.read_parquet(warm))
    mlem.apply(loaded, warm, output=out + ".warm-out.parquet")
    if mode == "raw-predict":
        df = pd.read_parquet(data)
        start = time.perf_counter()
        loaded.model.predict(df)
        seconds = time.perf_counter() - start
    elif mode == "raw-pipeline":
        start = time.perf_counter()
        df = pd.read_parquet(data)
        pred = loaded.model.predict(df)
        pd.DataFrame({"prediction": pred}).to_parquet(out, index=False)
        seconds = time.perf_counter() - start
    elif mode == "apply":
        start = time.perf_counter()
        mlem.apply(loaded, data, output=out, batch_size=batch_size)
        seconds = time.perf_counter() - start
    else:
        raise SystemExit(f"unknown mode {mode}")
    return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def _make_data(folder: str, rows: list[int]) -> tuple[str, dict[int, str]]:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import mlem_lib.api as mlem

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = COLUMNS
    model_path = os.path.join(folder, "lr")
    mlem.save(LogisticRegression(max_iter=500).fit(X, y), model_path, sample_data=X)
    rng = np.random.default_rng(0)
    files = {}
    for n in rows:
        idx = rng.integers(0, len(X), n)
        values = X.to_numpy()[idx] + rng.normal(0, 0.1, (n, 4))
        path = os.path.join(folder, f"iris_{n}.parquet")
        pd.DataFrame(values, columns=COLUMNS).to_parquet(path, index=False)
        files[n] = path
    return model_path, files


def _run(mode: str, data: str, model: str, out: str, batch_size: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", mode, data, model, out]
    if batch_size:
        cmd += ["--batch-size", str(batch_size)]
    # One BLAS thread for every run: on a busy 2-core machine a multi-threaded BLAS
    # spin-waits and makes both sides 10x slower and noisy.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode:
        raise SystemExit(f"{mode} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per chunk for mlem apply (default: the library's)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell; best is kept")
    parser.add_argument("--worker", nargs=4, metavar=("MODE", "DATA", "MODEL", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(*args.worker, args.batch_size)))
        return

    from mlem_lib.batch import DEFAULT_BATCH_SIZE

    modes = [("raw-predict", "raw predict (in memory)"),
             ("raw-pipeline", "raw read+predict+write (in memory)"),
             ("apply", "mlem apply (streamed)")]
    with tempfile.TemporaryDirectory(prefix="mlem-bench-") as folder:
        model, files = _make_data(folder, args.rows)
        results: dict[tuple[int, str], dict[str, Any]] = {}
        for n, path in files.items():
            for mode, _ in modes:
                runs = [_run(mode, path, model, os.path.join(folder, "out.parquet"),
                             args.batch_size) for _ in range(args.repeat)]
                results[n, mode] = {"seconds": min(r["seconds"] for r in runs),
                                    "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
    print(f"batch size: {args.batch_size or DEFAULT_BATCH_SIZE}, best of {args.repeat}, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cores\n")
    print("| rows | run | seconds | rows/s | vs raw predict | vs raw pipeline | peak RSS MB |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in files:
        raw = results[n, "raw-predict"]["seconds"]
        pipe = results[n, "raw-pipeline"]["seconds"]
        for mode, name in modes:
            r = results[n, mode]
            print(f"| {n:,} | {name} | {r['seconds']:.3f} | {n / r['seconds']:,.0f} | "
                  f"{raw / r['seconds']:.0%} | {pipe / r['seconds']:.0%} | "
                  f"{r['peak_rss_mb']:.0f} |")
    if len(files) >= 2:
        small, big = min(files), max(files)
        ratio = results[big, "apply"]["peak_rss_mb"] / results[small, "apply"]["peak_rss_mb"]
        raw_ratio = (results[big, "raw-pipeline"]["peak_rss_mb"]
                     / results[small, "raw-pipeline"]["peak_rss_mb"])
        print(f"\nmlem apply peak RSS {big:,} / {small:,} rows: {ratio:.2f}x "
              f"(target <= 1.2x; raw pipeline: {raw_ratio:.2f}x)")


if __name__ == "__main__":
    main()
