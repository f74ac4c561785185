"""Benchmark ``mlem serve`` against its peers and the raw in-process ``predict``, in one run.

Servers, each a child process with one worker on 127.0.0.1, measured one after the other
with the same models (iris LogisticRegression and RandomForest(100), trained the same way
in each venv) and the same rows:

- **mlem_lib** with default flags (``mlem serve``), and for one-row requests also with
  micro-batching (``--batch-max-size 64 --batch-max-latency-ms 5``);
- **plain FastAPI**: a hand-written app with a sync handler that turns the body into a
  numpy array (``/predict``) or a DataFrame of row objects (``/predict_records``);
- **BentoML 1.4.40**: a numpy service and a DataFrame service (``bentoml serve``), side
  venv from ``scripts/peer-venv.sh bentoml`` (env ``BENCH_BENTOML_VENV``);
- **MLflow 3.17**: ``mlflow models serve --env-manager local``, side venv from
  ``scripts/peer-venv.sh mlflow`` (env ``BENCH_MLFLOW_VENV``);
- **MLEM 0.4.14**: ``mlem serve fastapi``, side venv from ``scripts/mlem-side-venv.sh``
  (env ``MLEM_SIDE_VENV``);
- **mlem_lib onnx**: ``mlem serve --runtime onnx`` (issue 14): the same models answered by
  their ONNX export through ONNX Runtime, next to ONNX Runtime's own in-process call.

A peer whose venv is missing is left out, and the summary says so. Each server gets its
own natural body for the same rows; the first answer of each cell is checked against the
raw ``predict`` of those rows, so a fast wrong answer cannot count.

    .venv/bin/python bench/serve.py              # prints the tables (about 10 minutes)
    .venv/bin/python bench/serve.py --quick      # fewer requests per cell
    .venv/bin/python bench/serve.py --peers plain,bentoml
    .venv/bin/python bench/serve.py --peers onnx      # native vs --runtime onnx only
    .venv/bin/python bench/serve.py --peers onnx --models rf   # the forest only

Every loop is bounded by a request count and a time budget; every server is a child
process in a session of its own, stopped through that session's process group id. This
is a benchmark, not a test: CI never runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CELL_BUDGET_S = 20.0
QUIET_ENV = {"MLEM_NO_ANALYTICS": "true", "BENTOML_DO_NOT_TRACK": "true",
             "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}

TRAIN = f"""
import sys
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True, as_frame=True)
X.columns = {COLUMNS!r}
MODELS = {{"lr": LogisticRegression(max_iter=500).fit(X, y),
          "rf": RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)}}
"""
SAVE_MLEM = TRAIN + """
import mlem.api
for key, model in MODELS.items():
    mlem.api.save(model, sys.argv[1] + "/" + key, sample_data=X)
"""
SAVE_BENTOML = TRAIN + """
import bentoml
for key, model in MODELS.items():
    bentoml.sklearn.save_model("iris_" + key, model)
"""
SAVE_MLFLOW = TRAIN + """
import warnings
warnings.filterwarnings("ignore")
import mlflow.sklearn
# MLflow 3.17 writes skops; a forest's Tree type has to be trusted explicitly
TRUSTED = {"rf": ["sklearn.tree._tree.Tree"]}
for key, model in MODELS.items():
    mlflow.sklearn.save_model(model, sys.argv[1] + "/" + key, input_example=X.head(2),
                              skops_trusted_types=TRUSTED.get(key))
"""
BENTO_SERVICE = '''
import os

import bentoml
import numpy as np
import pandas as pd

TAG = os.environ["BENCH_BENTO_TAG"]


@bentoml.service(workers=1)
class NumpyService:
    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(TAG)

    @bentoml.api
    def predict(self, input: np.ndarray) -> np.ndarray:
        return self.model.predict(input)


@bentoml.service(workers=1)
class FrameService:
    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(TAG)

    @bentoml.api
    def predict(self, input: pd.DataFrame) -> np.ndarray:
        return self.model.predict(input)
'''
PLAIN_APP = '''
"""What a careful engineer writes by hand: a sync handler, numpy in."""
import os
import pickle

import numpy as np
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

with open(os.environ["BENCH_MODEL_PKL"], "rb") as f:
    model = pickle.load(f)
app = FastAPI()


class Rows(BaseModel):
    data: list[list[float]]


class Records(BaseModel):
    data: list[dict[str, float]]


@app.get("/health")
def health() -> dict:
    return {"ok": True}


@app.post("/predict")
def predict(body: Rows) -> dict:
    return {"predictions": model.predict(np.asarray(body.data)).tolist()}


@app.post("/predict_records")
def predict_records(body: Records) -> dict:
    return {"predictions": model.predict(pd.DataFrame(body.data)).tolist()}
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server child process in its own session; ready when ``ready_path`` answers 200."""

    def __init__(self, argv: list[str], port: int, ready_path: str, log: Path,
                 env: dict[str, str] | None = None, cwd: Path = REPO_ROOT) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=cwd, env={**os.environ, **QUIET_ENV, **(env or {})},
                                     start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                raise RuntimeError(f"{argv[:3]} exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + ready_path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{argv[:3]} did not come up")

    def stop(self) -> None:
        """Stop the server and whatever it started (MLflow and BentoML start workers)."""
        if self.proc.poll() is None:
            pgid = self.proc.pid  # start_new_session: the session's group id is its pid
            os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers left behind by the parent
        self._log.close()


@dataclass
class Result:
    requests: int
    rps: float
    p50: float
    p99: float


def load(url: str, body: bytes, headers: dict[str, str], clients: int, per_client: int
         ) -> Result:
    """``clients`` threads, each with its own keep-alive connection, ``per_client`` requests."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []
    deadline = time.monotonic() + CELL_BUDGET_S

    def worker() -> None:
        mine: list[float] = []
        with httpx.Client(timeout=120) as http:
            http.post(url, content=body, headers=headers)  # warm the connection
            for _ in range(per_client):
                if time.monotonic() > deadline:
                    break
                t = time.perf_counter()
                r = http.post(url, content=body, headers=headers)
                mine.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                    break
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{url}: {errors[0]}")
    latencies.sort()
    return Result(len(latencies), len(latencies) / wall,
                  1000 * latencies[len(latencies) // 2],
                  1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))])


def raw_ms(model: Any, X: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict(X)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


# -- the rows and each server's body for them ------------------------------------------
@dataclass
class Payload:
    """One set of rows, sent in a given layout."""

    name: str
    frame: Any  # the rows, as a DataFrame with COLUMNS
    layout: str  # "rows" (row objects), "split", "parquet", "numpy" (nested lists)


def _rows(frame: Any) -> list[dict[str, float]]:
    return list(frame.to_dict("records"))


def _labels(value: Any) -> list[int]:
    """Predicted labels from any server's answer (a list, or a dict holding one)."""
    if isinstance(value, dict):
        for key in ("predictions", "data", "values"):
            if key in value:
                return _labels(value[key])
        if len(value) == 1:
            return _labels(next(iter(value.values())))
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [int(next(iter(v.values()))) for v in value]
    return [int(v) for v in value]


@dataclass
class Peer:
    """How to start one server for one model, and what it accepts."""

    label: str
    start: Callable[[str, Path], Server]  # (model key, tmp dir) -> running server
    bodies: dict[str, Callable[[Any], tuple[str, bytes, dict[str, str]]]] = field(
        default_factory=dict)  # layout -> frame -> (path, body, headers)
    only_rows: str | None = None  # measure only requests of these rows (e.g. "1 row")


JSON = {"Content-Type": "application/json"}


def _mlem_lib_bodies() -> dict[str, Callable[[Any], tuple[str, bytes, dict[str, str]]]]:
    def parquet(frame: Any) -> tuple[str, bytes, dict[str, str]]:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return "/predict", buf.getvalue(), {"Content-Type": "application/x-parquet"}

    return {
        "rows": lambda f: ("/predict", orjson.dumps({"data": {"values": _rows(f)}}), JSON),
        "split": lambda f: ("/predict", orjson.dumps(
            {"data": {"columns": list(f.columns), "data": f.to_numpy().tolist()}}), JSON),
        "parquet": parquet,
    }


BATCH_ARGS = ["--batch-max-size", "64", "--batch-max-latency-ms", "5"]
BATCHED = "mlem_lib batched"
NO_METRICS = "mlem_lib no metrics"  # `mlem_lib` itself runs with /metrics on (the default)


def metrics_cost_us(calls: int = 200_000) -> float:
    """In-process cost of recording one request in the Prometheus metrics (microseconds)."""
    import time

    from mlem_lib.serve.metrics import ServerMetrics

    metrics = ServerMetrics(model_hash="0" * 64, model_type="sklearn", version="bench")
    start = time.perf_counter()
    for _ in range(calls):
        metrics.observe("predict", 200, 0.0004)
    return (time.perf_counter() - start) / calls * 1e6


def mlem_lib_peer(models_dir: Path, extra_args: list[str] | None = None,
                  label: str = "mlem_lib", only_rows: str | None = None) -> Peer:
    def start(key: str, tmp: Path) -> Server:
        port = free_port()
        argv = [sys.executable, "-m", "mlem_lib.cli", "serve", str(models_dir / key),
                "--port", str(port), *(extra_args or [])]
        return Server(argv, port, "/health", tmp / f"{label.replace(' ', '-')}-{key}.log")

    return Peer(label, start, _mlem_lib_bodies(), only_rows)


def plain_peer(models_dir: Path) -> Peer:
    def start(key: str, tmp: Path) -> Server:
        app_dir = tmp / "plain_app"
        app_dir.mkdir(exist_ok=True)
        (app_dir / "plain_app.py").write_text(PLAIN_APP)
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "plain_app:app", "--host", "127.0.0.1",
                "--port", str(port), "--no-access-log"]
        return Server(argv, port, "/health", tmp / f"plain-{key}.log",
                      env={"BENCH_MODEL_PKL": str(models_dir / f"{key}.pkl")}, cwd=app_dir)

    return Peer("plain FastAPI", start, {
        "numpy": lambda f: ("/predict", orjson.dumps({"data": f.to_numpy().tolist()}), JSON),
        "rows": lambda f: ("/predict_records", orjson.dumps({"data": _rows(f)}), JSON),
    })


def _train(venv: Path, script: str, target: Path, env: dict[str, str]) -> None:
    """Train and save the models with a peer's own library, in its venv."""
    done = subprocess.run([str(venv / "bin" / "python"), "-c", script, str(target)],
                          capture_output=True, text=True, env={**os.environ, **QUIET_ENV, **env})
    if done.returncode != 0:
        raise RuntimeError(f"training in {venv} failed:\n{done.stderr[-3000:]}")


def bentoml_peers(venv: Path, tmp: Path) -> list[Peer]:
    home = tmp / "bentoml-home"
    env = {"BENTOML_HOME": str(home)}
    _train(venv, SAVE_BENTOML, tmp, env)
    service_dir = tmp / "bento_service"
    service_dir.mkdir()
    (service_dir / "service.py").write_text(BENTO_SERVICE)
    path_env = {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}

    def starter(service: str) -> Callable[[str, Path], Server]:
        def start(key: str, tmp_: Path) -> Server:
            port = free_port()
            argv = [str(venv / "bin" / "bentoml"), "serve", f"service:{service}",
                    "--host", "127.0.0.1", "--port", str(port)]
            return Server(argv, port, "/readyz", tmp_ / f"bentoml-{service}-{key}.log",
                          env={**path_env, "BENCH_BENTO_TAG": f"iris_{key}:latest"},
                          cwd=service_dir)
        return start

    return [
        Peer("BentoML numpy", starter("NumpyService"), {
            "numpy": lambda f: ("/predict", orjson.dumps({"input": f.to_numpy().tolist()}),
                                JSON)}),
        Peer("BentoML DataFrame", starter("FrameService"), {
            "rows": lambda f: ("/predict", orjson.dumps({"input": _rows(f)}), JSON)}),
    ]


def mlflow_peer(venv: Path, tmp: Path) -> Peer:
    models = tmp / "mlflow-models"
    _train(venv, SAVE_MLFLOW, models, {})
    # mlflow starts `uvicorn` by name: the venv's bin must come first on PATH
    env = {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}

    def start(key: str, tmp_: Path) -> Server:
        port = free_port()
        argv = [str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(models / key),
                "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
        return Server(argv, port, "/ping", tmp_ / f"mlflow-{key}.log", env=env)

    return Peer("MLflow", start, {
        "rows": lambda f: ("/invocations", orjson.dumps({"dataframe_records": _rows(f)}),
                           JSON),
        "split": lambda f: ("/invocations", orjson.dumps(
            {"dataframe_split": {"columns": list(f.columns),
                                 "data": f.to_numpy().tolist()}}), JSON),
    })


def mlem_peer(venv: Path, tmp: Path) -> Peer:
    models = tmp / "mlem-models"
    _train(venv, SAVE_MLEM, models, {})

    def start(key: str, tmp_: Path) -> Server:
        port = free_port()
        argv = [str(venv / "bin" / "mlem"), "serve", "fastapi", "--model", str(models / key),
                "--host", "127.0.0.1", "--port", str(port)]
        return Server(argv, port, "/interface.json", tmp_ / f"mlem-{key}.log")

    return Peer("MLEM 0.4.14", start, {
        "rows": lambda f: ("/predict", orjson.dumps({"data": {"values": _rows(f)}}), JSON)})


def side_venv(env_name: str, default: str, exe: str) -> Path | None:
    root = Path(os.environ.get(env_name) or REPO_ROOT / default)
    return root if (root / "bin" / exe).exists() else None


# -- the run -------------------------------------------------------------------------
@dataclass
class Case:
    """One row of the detailed table: a model, rows, a layout and a number of clients."""

    model: str  # "lr" or "rf"
    rows: str  # key of the frames dict
    layouts: tuple[str, ...]  # layouts tried, first one a server accepts wins
    clients: int
    requests: int
    only: tuple[str, ...] = ()  # run only for these servers (empty: every server)


ONNX = "mlem_lib onnx"


def onnx_raw_ms(model_path: Path, X: Any, repeats: int) -> float:
    """Median time of ONNX Runtime's own ``run`` on the model's ONNX export, in process."""
    import numpy as np

    from mlem_lib.runner import LoadedModel
    from mlem_lib.serve.model_runtime import export_twin

    twin = export_twin(LoadedModel.load(str(model_path))).model
    feed = {twin.inputs[0].name: X.to_numpy(np.float32)}
    outputs = twin.methods["predict"].outputs
    session = twin.session
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        session.run(outputs, feed)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests per cell")
    parser.add_argument("--peers", default="plain,bentoml,mlflow,mlem,onnx,torch",
                        help="comma-separated peers to run next to mlem_lib (default: all); "
                             "torch: the PyTorch rows of bench/serve_torch.py (alone: only "
                             "those)")
    parser.add_argument("--json", metavar="FILE", help="also write every cell as JSON")
    parser.add_argument("--models", default="lr,rf",
                        help="comma-separated models: lr (LogisticRegression), rf "
                             "(RandomForest(100)); default both")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    wanted = {p.strip() for p in args.peers.split(",") if p.strip()}
    if wanted == {"torch"}:
        import serve_torch  # bench/serve_torch.py: PyTorch MLP and CNN rows

        return serve_torch.main()

    import pickle

    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    import mlem_lib.api as mlem

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = COLUMNS
    models = {"lr": LogisticRegression(max_iter=500).fit(X, y),
              "rf": RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)}
    chosen = {m.strip() for m in args.models.split(",") if m.strip()}
    models = {key: model for key, model in models.items() if key in chosen}
    if not models:
        parser.error(f"--models: choose among lr, rf (got {args.models!r})")
    names = {"lr": "LogisticRegression", "rf": "RandomForest(100)"}
    frames = {"1 row": X.head(1),
              "1000 rows": pd.concat([X] * 7, ignore_index=True).head(1000),
              "100k rows": pd.concat([X] * 667, ignore_index=True).head(100_000)}
    n = lambda count: max(3, int(count * scale))  # noqa: E731
    cases = [
        Case("lr", "1 row", ("numpy", "rows"), 1, n(2000)),
        Case("lr", "1 row", ("numpy", "rows"), 8, n(800)),
        Case("lr", "1000 rows", ("rows",), 1, n(300)),
        Case("lr", "1000 rows", ("split",), 1, n(300)),
        Case("lr", "1000 rows", ("parquet",), 1, n(300)),
        Case("lr", "100k rows", ("rows",), 1, n(24)),
        Case("lr", "100k rows", ("split",), 1, n(24)),
        Case("lr", "100k rows", ("parquet",), 1, n(24)),
        Case("rf", "1 row", ("numpy", "rows"), 1, n(600)),
        Case("rf", "1 row", ("numpy", "rows"), 8, n(600)),
        # issue 14: native and --runtime onnx, 1000 rows with 8 clients, the forest too
        Case("lr", "1000 rows", ("rows",), 8, n(300), only=("mlem_lib", ONNX)),
        Case("rf", "1000 rows", ("rows",), 1, n(200), only=("mlem_lib", ONNX)),
        Case("rf", "1000 rows", ("rows",), 8, n(200), only=("mlem_lib", ONNX)),
    ]

    tmp = Path(tempfile.mkdtemp(prefix="mlem-bench-"))
    models_dir = tmp / "mlem_lib"
    for key, model in models.items():
        mlem.save(model, str(models_dir / key), sample_data=X)
        with open(models_dir / f"{key}.pkl", "wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)

    peers = [mlem_lib_peer(models_dir),
             mlem_lib_peer(models_dir, ["--no-metrics"], label=NO_METRICS, only_rows="1 row"),
             mlem_lib_peer(models_dir, BATCH_ARGS, label=BATCHED, only_rows="1 row")]
    missing: list[str] = []
    onnx_raw: dict[tuple[str, str], float] = {}
    if "onnx" in wanted:
        os.environ["MLEM_ONNX_CACHE_DIR"] = str(tmp / "onnx-cache")  # servers find the twins
        onnx_raw = {(key, rows): onnx_raw_ms(models_dir / key, frames[rows],
                                             200 if rows == "1 row" else 20)
                    for key in models for rows in ("1 row", "1000 rows")}
        peers.append(mlem_lib_peer(models_dir, ["--runtime", "onnx"], label=ONNX))
    if "plain" in wanted:
        peers.append(plain_peer(models_dir))
    for key, env_name, default, exe, make, script in (
            ("bentoml", "BENCH_BENTOML_VENV", ".venv-bentoml", "bentoml", bentoml_peers,
             "scripts/peer-venv.sh bentoml"),
            ("mlflow", "BENCH_MLFLOW_VENV", ".venv-mlflow", "mlflow", mlflow_peer,
             "scripts/peer-venv.sh mlflow"),
            ("mlem", "MLEM_SIDE_VENV", ".venv-mlem", "mlem", mlem_peer,
             "scripts/mlem-side-venv.sh")):
        if key not in wanted:
            continue
        venv = side_venv(env_name, default, exe)
        if venv is None:
            missing.append(f"{key} (no venv: run {script})")
            continue
        made = make(venv, tmp)
        peers.extend(made if isinstance(made, list) else [made])

    raw = {(key, rows): raw_ms(models[key], frames[rows], 200 if rows == "1 row" else 20)
           for key in models for rows in frames}
    cells: list[dict[str, Any]] = []
    for key in models:
        model_cases = [c for c in cases if c.model == key]
        for peer in peers:
            runnable = [(c, next(lay for lay in c.layouts if lay in peer.bodies))
                        for c in model_cases if any(lay in peer.bodies for lay in c.layouts)
                        and peer.only_rows in (None, c.rows)
                        and (not c.only or peer.label in c.only)]
            if not runnable:
                continue
            server = peer.start(key, tmp)
            try:
                for case, layout in runnable:
                    frame = frames[case.rows]
                    path, body, headers = peer.bodies[layout](frame)
                    answer = httpx.post(server.url + path, content=body, headers=headers,
                                        timeout=300)
                    if answer.status_code != 200:
                        raise RuntimeError(f"{peer.label} {case.rows} {layout}: "
                                           f"{answer.status_code} {answer.text[:300]}")
                    if not answer.headers.get("content-type", "").startswith(
                            "application/json"):
                        got = None  # a binary answer: checked by our own tests
                    else:
                        got = _labels(answer.json())
                    if got is not None and got != [int(v) for v in models[key].predict(frame)]:
                        raise RuntimeError(f"{peer.label} answered wrong labels for "
                                           f"{case.rows} ({layout})")
                    res = load(server.url + path, body, headers, case.clients,
                               max(1, case.requests // case.clients))
                    cell = {"server": peer.label, "model": names[key], "rows": case.rows,
                            "layout": layout, "clients": case.clients,
                            "requests": res.requests, "rps": res.rps, "p50": res.p50,
                            "p99": res.p99, "raw_ms": raw[(key, case.rows)]}
                    if peer.label == ONNX:
                        cell["raw_ms"] = onnx_raw.get((key, case.rows), cell["raw_ms"])
                    cells.append(cell)
                    print(_detail_row(cell), file=sys.stderr, flush=True)
            finally:
                server.stop()

    print("| server | model | rows | body | clients | requests | req/s | p50 ms | p99 ms | "
          "raw predict ms (ONNX Runtime's run for mlem_lib onnx) |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cell in cells:
        print(_detail_row(cell))
    print()
    print_summary(cells, missing, metrics_cost_us())
    if onnx_raw:
        print()
        print_onnx_summary(cells, onnx_raw)
    if "torch" in wanted:
        import serve_torch

        print()
        serve_torch.print_torch(serve_torch.torch_cells(tmp, scale))
    print(f"\n{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
          "client threads and servers share the machine.")
    if args.json:
        Path(args.json).write_text(json.dumps(cells, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)  # models, venv-trained copies and server logs
    return 0


def _num(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _detail_row(c: dict[str, Any]) -> str:
    return (f"| {c['server']} | {c['model']} | {c['rows']} | {c['layout']} | {c['clients']} | "
            f"{c['requests']} | {_num(c['rps'])} | {c['p50']:.2f} | {c['p99']:.2f} | "
            f"{c['raw_ms']:.2f} |")


PEER_LABELS = ("BentoML numpy", "BentoML DataFrame", "MLflow")


def print_summary(cells: list[dict[str, Any]], missing: list[str],
                  metrics_us: float | None = None) -> None:
    """The ratios of issues #15 and #16, each next to its target."""

    def rps(server: str, model: str, rows: str, clients: int = 1,
            layouts: tuple[str, ...] = ("numpy", "rows")) -> float | None:
        for c in cells:
            if (c["server"], c["model"], c["rows"], c["clients"]) == (
                    server, model, rows, clients) and c["layout"] in layouts:
                return float(c["rps"])
        return None

    def p50(server: str, model: str, rows: str, clients: int) -> float | None:
        for c in cells:
            if (c["server"], c["model"], c["rows"], c["clients"]) == (
                    server, model, rows, clients):
                return float(c["p50"])
        return None

    def best_peer(model: str, rows: str, clients: int) -> tuple[str, float] | None:
        found = [(p, rps(p, model, rows, clients)) for p in PEER_LABELS]
        have = [(p, v) for p, v in found if v is not None]
        return max(have, key=lambda pv: pv[1]) if have else None

    lines = []

    def ratio_line(what: str, num: float | None, den: float | None, den_name: str,
                   target: float) -> None:
        if num is None or den is None:
            lines.append(f"| {what} | - | {den_name}: not measured | >= {target:g}x | - |")
            return
        value = num / den
        lines.append(f"| {what} | {_num(num)} | {den_name}: {_num(den)} | >= {target:g}x | "
                     f"{value:.2f}x {'met' if value >= target else 'NOT met'} |")

    lr, rf = "LogisticRegression", "RandomForest(100)"
    for clients in (1, 8):
        ours = rps("mlem_lib", lr, "1 row", clients)
        ratio_line(f"LR 1 row, {clients} client(s) vs plain FastAPI", ours,
                   rps("plain FastAPI", lr, "1 row", clients), "plain FastAPI", 1.2)
        best = best_peer(lr, "1 row", clients)
        ratio_line(f"LR 1 row, {clients} client(s) vs best of BentoML/MLflow", ours,
                   best[1] if best else None, best[0] if best else "best peer", 2.0)
    best = best_peer(lr, "1000 rows", 1)
    ratio_line("LR 1000 rows as row objects vs best peer", rps("mlem_lib", lr, "1000 rows"),
               best[1] if best else None, best[0] if best else "best peer", 2.0)
    for rows, target in (("1000 rows", 1.0), ("100k rows", 3.0)):
        objects = rps("mlem_lib", lr, rows, layouts=("rows",))
        for layout in ("split", "parquet"):
            ratio_line(f"LR {rows}: {layout} vs row objects (mlem_lib)",
                       rps("mlem_lib", lr, rows, layouts=(layout,)), objects,
                       "row objects", target)
    for clients in (1, 8):
        best = best_peer(rf, "1 row", clients)
        ratio_line(f"RF 1 row, {clients} client(s) vs best of BentoML/MLflow",
                   rps("mlem_lib", rf, "1 row", clients), best[1] if best else None,
                   best[0] if best else "best peer", 1.0)
    for model in (lr, rf):
        ratio_line(f"{model.split('(')[0]} 1 row, 8 clients: batched vs unbatched",
                   rps(BATCHED, model, "1 row", 8), rps("mlem_lib", model, "1 row", 8),
                   "unbatched", 2.0 if model == rf else 1.0)
        slow = p50(BATCHED, model, "1 row", 1)
        fast = p50("mlem_lib", model, "1 row", 1)
        if slow is not None and fast is not None:
            growth = slow - fast
            lines.append(f"| {model.split('(')[0]} 1 row, 1 client: batched p50 - unbatched "
                         f"p50 | {slow:.2f} ms | unbatched: {fast:.2f} ms | <= 5 ms (the "
                         f"configured wait) | {growth:+.2f} ms "
                         f"{'met' if growth <= 5.0 else 'NOT met'} |")
    for model in (lr, rf):  # issue #16: metrics on (the default) against --no-metrics
        on, off = rps("mlem_lib", model, "1 row"), rps(NO_METRICS, model, "1 row")
        if on is not None and off is not None:
            extra_ms = 1000 / on - 1000 / off
            lines.append(f"| {model.split('(')[0]} 1 row, 1 client: time per request, "
                         f"metrics on - off | {_num(on)} | no metrics: {_num(off)} | "
                         f"< 0.1 ms | {extra_ms:+.3f} ms (run-to-run noise included) |")
    if metrics_us is not None:
        lines.append(f"| recording one request in the metrics (in process) | - | - | "
                     f"< 0.1 ms | {metrics_us / 1000:.4f} ms "
                     f"{'met' if metrics_us < 100 else 'NOT met'} |")
    print("| target (issues #15, #16) | mlem_lib req/s | against req/s | target | ratio |")
    print("| --- | ---: | --- | --- | --- |")
    print("\n".join(lines))
    if missing:
        print("\nnot measured: " + "; ".join(missing))


def print_onnx_summary(cells: list[dict[str, Any]],
                       onnx_raw: dict[tuple[str, str], float]) -> None:
    """Issue 14's targets: ``--runtime onnx`` against native serving and ONNX Runtime."""

    def cell(server: str, model: str, rows: str, clients: int) -> dict[str, Any] | None:
        return next((c for c in cells if (c["server"], c["model"], c["rows"], c["clients"])
                     == (server, model, rows, clients)), None)

    print("| target (issue #14) | --runtime onnx | against | target | result |")
    print("| --- | ---: | --- | --- | --- |")
    for model, key in (("RandomForest(100)", "rf"), ("LogisticRegression", "lr")):
        for rows in ("1 row", "1000 rows"):
            for clients in (1, 8):
                fast, slow = cell(ONNX, model, rows, clients), cell("mlem_lib", model, rows,
                                                                    clients)
                if fast is None or slow is None:
                    continue
                ratio = fast["rps"] / slow["rps"]
                target = ">= 3x" if (key, rows, clients) == ("rf", "1 row", 1) else "-"
                verdict = ("met" if ratio >= 3 else "NOT met") if target != "-" else ""
                print(f"| {model.split('(')[0]} {rows}, {clients} client(s): req/s | "
                      f"{_num(fast['rps'])} | native: {_num(slow['rps'])} | {target} | "
                      f"{ratio:.2f}x {verdict} |")
        one = cell(ONNX, model, "1 row", 1)
        if one is not None:
            raw = onnx_raw[(key, "1 row")]
            gap = one["p50"] - raw
            print(f"| {model.split('(')[0]} 1 row, 1 client: p50 - ONNX Runtime in-process | "
                  f"{one['p50']:.2f} ms | ONNX Runtime run: {raw:.3f} ms | <= 1 ms | "
                  f"{gap:+.2f} ms {'met' if gap <= 1.0 else 'NOT met'} |")


if __name__ == "__main__":
    sys.exit(main())
