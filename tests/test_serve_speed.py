"""Serving fast paths give the answers of the regular path: the array fast path, columnar
bodies and micro-batching (real servers for batching)."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from starlette.testclient import TestClient

import mlem_lib.api as mlem
from mlem_lib.runner import LoadedModel
from mlem_lib.serve.app import create_app
from mlem_lib.serve.settings import ServerSettings


@pytest.fixture(scope="module")
def iris_models(iris, iris_lr, iris_rf, tmp_path_factory) -> dict[str, tuple[object, str]]:
    """name -> (model, saved path): two that take arrays, two pipelines, one by name."""
    X, y = iris
    by_name = make_pipeline(
        ColumnTransformer([("petals", StandardScaler(), ["petal_length", "petal_width"])]),
        LogisticRegression(max_iter=500)).fit(X, y)
    models = {"lr": iris_lr, "rf": iris_rf,
              "scaled": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
                  X, y),
              "by_name": by_name}
    root = tmp_path_factory.mktemp("speed")
    out = {}
    for name, model in models.items():
        mlem.save(model, str(root / name), sample_data=X)
        out[name] = (model, str(root / name))
    return out


def _bodies(frame: pd.DataFrame) -> dict[str, tuple[bytes, dict[str, str]]]:
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    as_json = {"Content-Type": "application/json"}
    return {
        "rows": (json.dumps({"data": {"values": frame.to_dict("records")}}).encode(), as_json),
        "split": (json.dumps({"data": {"columns": list(frame.columns),
                                       "data": frame.to_numpy().tolist()}}).encode(), as_json),
        "shuffled split": (json.dumps({"data": {
            "columns": list(frame.columns)[::-1],
            "data": frame[list(frame.columns)[::-1]].to_numpy().tolist()}}).encode(), as_json),
        "parquet": (parquet.getvalue(), {"Content-Type": "application/x-parquet"}),
    }


@pytest.mark.parametrize("rows", [1, 150])
def test_every_body_gives_the_raw_models_answers(iris, iris_models, rows):
    frame = iris[0].head(rows)
    for name, (model, path) in iris_models.items():
        app = create_app(LoadedModel.load(path), ServerSettings())
        service = app.state.service
        # the fast path is on exactly where the estimator does not use column names
        assert bool(service.fast_paths) is (name != "by_name"), name
        client = TestClient(app)
        arg_type = service.loaded.signature("predict").args[0].type_
        for layout, (body, headers) in _bodies(frame).items():
            # what the regular path hands the model: the table its data type decodes
            regular = (arg_type.decode(body, headers["Content-Type"], {})
                       if layout == "parquet" else
                       arg_type.from_json(json.loads(body)["data"]))
            assert isinstance(regular, pd.DataFrame)
            for method in ("predict", "predict_proba"):
                r = client.post(f"/{method}", content=body, headers=headers)
                assert r.status_code == 200, (name, layout, r.text)
                np.testing.assert_array_equal(np.asarray(r.json()),
                                              getattr(model, method)(regular),
                                              err_msg=f"{name} {layout} {method}")
                np.testing.assert_allclose(np.asarray(r.json()), getattr(model, method)(frame))


def test_errors_are_the_regular_paths_errors(iris, iris_models):
    _, path = iris_models["lr"]
    client = TestClient(create_app(LoadedModel.load(path), ServerSettings()))
    row = iris[0].head(1).to_dict("records")[0]
    missing = {k: v for k, v in row.items() if k != "petal_width"}
    r = client.post("/predict", json={"data": {"values": [missing]}})
    assert r.status_code == 400 and r.json()["field"] == "petal_width"
    r = client.post("/predict", json={"data": {"values": [{**row, "petal_width": "wide"}]}})
    assert r.status_code == 400 and r.json()["field"] == "petal_width"


# --- micro-batching, on real servers --------------------------------------------------

def _concurrently(calls: list) -> list:
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class BatchLog:
    """A model whose calls append their row count to a file (read by the test) and take
    2 ms, like a model worth batching (a cheaper one is called at once, never merged)."""

    def __init__(self, log: str) -> None:
        self.log = log

    def __call__(self, xs: list[float]) -> list[float]:
        time.sleep(0.002)
        with open(self.log, "a") as f:
            f.write(f"{len(xs)}\n")
        if any(x < 0 for x in xs):
            raise ValueError("negative values are not allowed")
        return [x * 10 for x in xs]


def test_batched_server_answers_each_caller_with_its_own_rows(iris, iris_models, start_server):
    model, path = iris_models["rf"]
    server = start_server(path, "--batch-max-size", "64", "--batch-max-latency-ms", "20")
    X = iris[0]

    def client(k: int):
        def go():
            out = []
            with httpx.Client(base_url=server.url, timeout=60) as http:
                for i in range(6):
                    frame = X.iloc[(k * 13 + i * 7) % 140:][: 1 + (k + i) % 3]
                    r = http.post("/predict_proba",
                                  json={"data": {"values": frame.to_dict("records")}})
                    out.append((frame, r))
            return out
        return go

    for answers in _concurrently([client(k) for k in range(8)]):
        for frame, r in answers:
            assert r.status_code == 200, r.text
            np.testing.assert_array_equal(np.asarray(r.json()), model.predict_proba(frame))


def test_batching_merges_calls_and_fails_only_the_bad_caller(tmp_path, start_server):
    log = tmp_path / "calls.log"
    path = str(tmp_path / "tens")
    mlem.save(BatchLog(str(log)), path, sample_data=[1.0, 2.0])
    log.unlink()
    server = start_server(path, "--batch-max-size", "64", "--batch-max-latency-ms", "50")

    def call(values: list[float]):
        return lambda: httpx.post(f"{server.url}/predict", json={"data": values}, timeout=60)

    inputs = [[float(k), float(k) + 0.5] for k in range(12)] + [[1.0, -1.0]]
    for _ in range(3):  # a few rounds, so that some requests meet in a batch
        responses = _concurrently([call(v) for v in inputs])
        for values, r in zip(inputs, responses, strict=True):
            if min(values) < 0:
                assert r.status_code == 500 and "negative" in r.json()["error"]
            else:
                assert r.status_code == 200, r.text
                assert r.json() == [x * 10 for x in values]
    sizes = [int(line) for line in Path(log).read_text().split()]
    assert max(sizes) > 2, sizes  # some model calls carried several callers' rows


def test_batching_settings_are_checked(start_server, iris_models, tmp_path):
    import subprocess
    import sys

    _, path = iris_models["lr"]
    out = subprocess.run([sys.executable, "-m", "mlem_lib.cli", "serve", path,
                          "--batch-max-size", "-1"], capture_output=True, text=True)
    assert out.returncode != 0 and "--batch-max-size" in out.stderr
    assert "Traceback" not in out.stderr
