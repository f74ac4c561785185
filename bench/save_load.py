"""Benchmark: save, load and load_meta against plain pickle, plus import and CLI start-up.

Run: ``.venv/bin/python bench/save_load.py`` (prints a markdown table).

Targets (issue #2): load_meta < 10 ms; load within 1.5x of pickle.load + sha256;
``import mlem_lib.api`` < 0.2 s; ``mlem --help`` < 0.5 s.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mlem_lib.api as mlem


class BigModel:
    """A model carrying ~200 MB of weights (25M float64)."""

    def __init__(self) -> None:
        self.weights = np.random.default_rng(0).random(25_000_000)

    def predict(self, xs: Any) -> Any:
        return np.asarray(xs).sum(axis=1) * self.weights[0]


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) if repeat < 5 else statistics.median(times)


def bench_model(name: str, model: Any, sample: Any, repeat: int, folder: str) -> list[str]:
    path = os.path.join(folder, name)
    pkl = path + ".pkl"

    def plain_save() -> None:
        with open(pkl, "wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)

    def plain_load() -> Any:
        with open(pkl, "rb") as f:
            return pickle.load(f)

    def plain_load_hashed() -> Any:
        with open(pkl, "rb") as f:
            body = f.read()
        hashlib.sha256(body).hexdigest()
        return pickle.loads(body)

    t_save_pkl = best_of(plain_save, repeat)
    t_save = best_of(lambda: mlem.save(model, path, sample_data=sample), repeat)
    t_load_pkl = best_of(plain_load, repeat)
    t_load_pkl_hash = best_of(plain_load_hashed, repeat)
    from mlem_lib.mlemfile import _yaml_load_cached

    def cold(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            _yaml_load_cached.cache_clear()  # as the first read in a new process
            return fn()
        return run

    t_load = best_of(cold(lambda: mlem.load(path)), repeat)
    t_load_warm = best_of(lambda: mlem.load(path), repeat)
    t_meta = best_of(cold(lambda: mlem.load_meta(path)), max(repeat, 20))
    t_meta_warm = best_of(lambda: mlem.load_meta(path), max(repeat, 20))
    size = os.path.getsize(path)
    return [name, f"{size / 1e6:.1f} MB", f"{t_save * 1e3:.1f}", f"{t_save_pkl * 1e3:.1f}",
            f"{t_load * 1e3:.1f} / {t_load_warm * 1e3:.1f}", f"{t_load_pkl * 1e3:.1f}",
            f"{t_load_pkl_hash * 1e3:.1f}", f"{t_load / t_load_pkl_hash:.2f}x / "
            f"{t_load_warm / t_load_pkl_hash:.2f}x",
            f"{t_meta * 1e3:.2f} / {t_meta_warm * 1e3:.2f}"]


def cold_command(args: list[str], repeat: int = 5) -> float:
    return best_of(lambda: subprocess.run(args, check=True, capture_output=True), repeat)


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows.append(bench_model("iris random forest", rf, X, 10, folder))
        rows.append(bench_model("200 MB model", BigModel(), np.ones((2, 3)), 3, folder))
    header = ["model", "size", "save ms", "pickle.dump ms", "load ms (first / repeat)",
              "pickle.load ms", "pickle.load+sha256 ms", "load / (pickle+sha256)",
              "load_meta ms (first / repeat)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")

    python = sys.executable
    t_py = cold_command([python, "-c", "pass"])
    t_import = cold_command([python, "-c", "import mlem_lib.api"])
    t_help = cold_command([python, "-m", "mlem_lib.cli", "--help"])
    print()
    print("| start-up | seconds | target |")
    print("|---|---|---|")
    print(f"| python -c pass (baseline) | {t_py:.3f} | |")
    print(f"| import mlem_lib.api (process total) | {t_import:.3f} | < 0.2 |")
    print(f"| mlem --help (process total) | {t_help:.3f} | < 0.5 |")


if __name__ == "__main__":
    main()
