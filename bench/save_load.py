"""Benchmark: save, load and load_meta against plain pickle, plus import and CLI start-up.

Run: ``.venv/bin/python bench/save_load.py`` (prints markdown tables; ``--quick`` runs
fewer processes).

Targets (issue #2): load_meta < 10 ms; load within 1.5x of pickle.load + sha256;
``import mlem_lib.api`` < 0.2 s; ``mlem --help`` < 0.5 s.

Targets (issue #15): the first ``save`` of the iris RandomForest in a fresh process is at
most 150 ms more than the second one in the same process. Each fresh process is a child
started here: it trains the forest (not timed), imports ``mlem_lib.api``, then times two
saves; the table gives the median over the processes of the first, the second and their
difference, in wall-clock and CPU time (CPU time moves less when other work shares the
machine). "warm cache" is the usual case: the module-to-distribution answers of an
earlier process are on disk; "cold cache" starts every process with an empty cache (the
first save after installing or upgrading a package). The first ``load`` in a fresh process
is timed the same way next to a fresh process's ``pickle.load`` of the same artifact (both
import scikit-learn). Children run with bytecode caching on, as an installed package has.
"""

from __future__ import annotations

import argparse
import hashlib
import json
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


COLD_CHILD = r"""
import json, os, pickle, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")
mode, folder = sys.argv[1], sys.argv[2]

def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu

if mode == "save":
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    X, y = load_iris(return_X_y=True, as_frame=True)
    rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    _, wall_i, cpu_i = timed(lambda: __import__("mlem_lib.api"))
    import mlem_lib.api as mlem
    out = tempfile.mkdtemp(dir=folder)
    _, w1, c1 = timed(lambda: mlem.save(rf, os.path.join(out, "a"), sample_data=X))
    _, w2, c2 = timed(lambda: mlem.save(rf, os.path.join(out, "b"), sample_data=X))
    print(json.dumps({"first": [w1, c1], "second": [w2, c2], "import": [wall_i, cpu_i]}))
elif mode == "load":
    import mlem_lib.api as mlem
    path = os.path.join(folder, "model")
    _, w1, c1 = timed(lambda: mlem.load(path))
    _, w2, c2 = timed(lambda: mlem.load(path))
    print(json.dumps({"first": [w1, c1], "second": [w2, c2]}))
else:  # pickle
    path = os.path.join(folder, "model.pkl")
    def read():
        with open(path, "rb") as f:
            return pickle.load(f)
    _, w1, c1 = timed(read)
    _, w2, c2 = timed(read)
    print(json.dumps({"first": [w1, c1], "second": [w2, c2]}))
"""


def _child_env(cache_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["MLEM_LIB_CACHE_DIR"] = cache_dir
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
         *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _child(mode: str, folder: str, cache_dir: str) -> dict[str, list[float]]:
    done = subprocess.run([sys.executable, "-c", COLD_CHILD, mode, folder], check=True,
                          capture_output=True, text=True, env=_child_env(cache_dir))
    result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:.0f}"


def cold_tables(processes: int) -> None:
    """First save and first load in fresh processes (issue #15), medians over processes."""
    import pickle as _pickle

    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    with tempfile.TemporaryDirectory() as folder:
        warm_cache = os.path.join(folder, "cache")
        _child("save", folder, warm_cache)  # writes bytecode and the distributions cache
        rows = []
        for label in ("warm cache", "cold cache"):
            runs = []
            for i in range(processes):
                cache = warm_cache if label == "warm cache" else os.path.join(
                    folder, f"cold-{i}")
                runs.append(_child("save", folder, cache))
            cols = []
            for clock in (0, 1):
                first = [r["first"][clock] for r in runs]
                second = [r["second"][clock] for r in runs]
                diff = [a - b for a, b in zip(first, second, strict=True)]
                cols += [_ms(first), _ms(second), _ms(diff)]
            verdict = "yes" if statistics.median(
                [r["first"][0] - r["second"][0] for r in runs]) <= 0.150 else "NO"
            rows.append(f"| first save, {label} | {' | '.join(cols)} | {verdict} |")
        print(f"| fresh process (median of {processes}) | first wall ms | second wall ms | "
              "first - second wall ms | first CPU ms | second CPU ms | first - second CPU ms "
              "| wall diff <= 150 ms |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        print("\n".join(rows))

        X, y = load_iris(return_X_y=True, as_frame=True)
        rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
        mlem.save(rf, os.path.join(folder, "model"), sample_data=X)
        with open(os.path.join(folder, "model.pkl"), "wb") as f:
            _pickle.dump(rf, f, protocol=_pickle.HIGHEST_PROTOCOL)
        _child("load", folder, warm_cache)
        loads = [(_child("load", folder, warm_cache), _child("pickle", folder, warm_cache))
                 for _ in range(processes)]
        print()
        print(f"| fresh process (median of {processes}) | first call wall ms | "
              "first call CPU ms | second call wall ms |")
        print("|---|---:|---:|---:|")
        for name, idx in (("mlem_lib load", 0), ("pickle.load of the same forest", 1)):
            runs = [pair[idx] for pair in loads]
            print(f"| {name} | {_ms([r['first'][0] for r in runs])} | "
                  f"{_ms([r['first'][1] for r in runs])} | "
                  f"{_ms([r['second'][0] for r in runs])} |")
        ratio = [a["first"][0] / b["first"][0] for a, b in loads]
        print(f"\nfirst load / first pickle.load, same process pairs: median "
              f"{statistics.median(ratio):.2f}x")


def cold_command(args: list[str], repeat: int = 5) -> float:
    return best_of(lambda: subprocess.run(args, check=True, capture_output=True), repeat)


def main() -> None:
    import warnings

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer fresh processes")
    parser.add_argument("--cold-only", action="store_true",
                        help="only the fresh-process tables (issue #15)")
    args = parser.parse_args()
    cold_tables(3 if args.quick else 9)
    if args.cold_only:
        return
    print()

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
