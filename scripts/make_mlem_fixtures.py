#!/usr/bin/env python
"""Generate test fixtures with the REAL MLEM, so mlem_lib can be checked
against the system it follows.

Run it with the side venv's python (not the project's own venv)::

    python3.11 -m venv /tmp/mlem-venv
    /tmp/mlem-venv/bin/pip install mlem==0.4.14 isort==5.12.0 pydantic==1.10.12 \
        numpy==1.26.4 pandas==2.0.3 scikit-learn==1.3.2 fastapi==0.99.1 \
        uvicorn==0.23.2 typer==0.9.0 click==8.1.7 httpx requests
    # optional, for a legacy (0.2) fixture made by the real old MLEM:
    python3.11 -m venv /tmp/mlem02-venv
    /tmp/mlem02-venv/bin/pip install mlem==0.2.9 pydantic==1.9.2 numpy==1.26.4 \
        pandas==1.5.3 scikit-learn==1.3.2 isort==5.10.1 click==8.1.3 typer==0.6.1

    MLEM_NO_ANALYTICS=true /tmp/mlem-venv/bin/python scripts/make_mlem_fixtures.py all

Sub-commands (all write under tests/fixtures/mlem/ unless --out is given):

    models   .mlem models and data objects + MANIFEST.json (+ legacy_v02/)
    legacy   only legacy_v02/ (runs in the 0.2 venv, or --handwritten)
    http     start MLEM's FastAPI server per model, record http/*.json
    bench    benchmark MLEM's server and save/load -> BENCH_MLEM.md
    project  a small MLEM project (project/): a model, data, links, envs, deployment
             and builder declarations and a heroku state, written by MLEM's own
             classes; needs MLEM's heroku/sagemaker/kubernetes extras, i.e. the
             venv of `scripts/peer-venv.sh mlem-objects`
    all      models, http, bench (not project: it needs the other venv)

Every server this script starts is a child process that it stops by PID.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import pickle
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("MLEM_NO_ANALYTICS", "true")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "mlem"
LEGACY_PYTHON = Path(os.environ.get("MLEM02_PYTHON", "/tmp/mlem02-venv/bin/python"))

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

# fixture name -> path of the object inside the fixture folder
MODEL_FIXTURES = {
    "sklearn_lr": "sklearn_lr/model",
    "sklearn_pipeline": "sklearn_pipeline/model",
    "sklearn_ndarray": "sklearn_ndarray/model",
    "callable_func": "callable_func/model",
    "callable_df": "callable_df/model",
    "callable_class": "callable_class/model",
}
DATA_FIXTURES = {
    "data_dataframe": "data_dataframe/data",
    "data_ndarray": "data_ndarray/data",
    "data_list": "data_list/data",
    "data_list_mixed": "data_list_mixed/data",
    "data_dict": "data_dict/data",
}


# --------------------------------------------------------------------------
# helpers


def iris_frame():
    import pandas as pd
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    df = pd.DataFrame(X.astype("float64"), columns=COLUMNS)
    return df, y


def to_jsonable(obj):
    """Turn MLEM call results into plain JSON (floats keep full precision)."""
    import numpy as np
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return {
            "__kind__": "dataframe",
            "columns": [str(c) for c in obj.columns],
            "dtypes": [str(t) for t in obj.dtypes],
            "rows": [[to_jsonable(v) for v in row] for row in obj.itertuples(index=False)],
        }
    if isinstance(obj, pd.Series):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    return obj


def value_kind(obj):
    import numpy as np
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return "dataframe"
    if isinstance(obj, np.ndarray):
        return f"ndarray[{obj.dtype}]"
    return type(obj).__name__


def dump_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def md5_file(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_yaml(path: Path):
    import yaml

    return yaml.safe_load(path.read_text())


def versions():
    import mlem
    import numpy
    import pandas
    import sklearn

    return {
        "mlem": mlem.__version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "scikit-learn": sklearn.__version__,
    }


def funcs_module():
    """Import tests/fixtures/mlem/fixture_funcs.py as top-level module
    ``fixture_funcs`` (that is the name the pickles reference)."""
    sys.dont_write_bytecode = True  # no __pycache__ inside tests/fixtures
    sys.path.insert(0, str(DEFAULT_OUT))
    import fixture_funcs

    return fixture_funcs


# --------------------------------------------------------------------------
# models and data (MLEM 0.4)


def make_models(out: Path, legacy: str) -> dict:
    import mlem
    import mlem.api as api
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    assert mlem.__version__.startswith("0.4"), mlem.__version__
    ff = funcs_module()

    df, y = iris_frame()
    X = df.to_numpy()
    df5 = df.head(5)
    x5 = X[:5]
    mixed_rows = [0, 50, 100, 149]  # one setosa, one versicolor, two virginica
    df_mixed = df.iloc[mixed_rows].reset_index(drop=True)
    list5 = [float(v) for v in df5["sepal_length"]]

    for name in list(MODEL_FIXTURES) + list(DATA_FIXTURES):
        shutil.rmtree(out / name, ignore_errors=True)

    lr = LogisticRegression(max_iter=1000).fit(df, y)
    pipe = Pipeline([("scaler", StandardScaler()), ("lr", LogisticRegression(max_iter=1000))]).fit(
        df, y
    )
    lr_nd = LogisticRegression(max_iter=1000).fit(X, y)

    # (object, sample_data, input used for expected values, call spec)
    models = {
        "sklearn_lr": (lr, df, df5),
        "sklearn_pipeline": (pipe, df, df5),
        "sklearn_ndarray": (lr_nd, X, x5),
        # sample sizes are kept equal to the fixed input: MLEM's `array`
        # (python list) type records a fixed `size` taken from the sample
        "callable_func": (ff.double, list5, list5),
        "callable_df": (ff.double, df5, df5),
        "callable_class": (ff.Scaler(factor=3.0, offset=1.0), x5, x5),
    }

    manifest = {
        "generated_by": versions(),
        "generator": "scripts/make_mlem_fixtures.py",
        "inputs": {
            "iris_first5_dataframe": {
                "columns": COLUMNS,
                "dtypes": ["float64"] * 4,
                "rows": df5.to_numpy().tolist(),
            },
            "iris_first5_ndarray": x5.tolist(),
            "iris_first5_sepal_length_list": list5,
            "iris_rows_0_50_100_149_dataframe": {
                "columns": COLUMNS,
                "dtypes": ["float64"] * 4,
                "rows": df_mixed.to_numpy().tolist(),
            },
            "iris_rows_0_50_100_149_ndarray": df_mixed.to_numpy().tolist(),
        },
        "fixtures": {},
    }
    input_names = {
        "sklearn_lr": "iris_first5_dataframe",
        "sklearn_pipeline": "iris_first5_dataframe",
        "sklearn_ndarray": "iris_first5_ndarray",
        "callable_func": "iris_first5_sepal_length_list",
        "callable_df": "iris_first5_dataframe",
        "callable_class": "iris_first5_ndarray",
    }

    for name, (obj, sample, inp) in models.items():
        path = out / MODEL_FIXTURES[name]
        api.save(obj, str(path), sample_data=sample)
        meta = read_yaml(path.with_name(path.name + ".mlem"))
        proc = meta["processors"]["model"]
        loaded = api.load(str(path))
        expected = {}
        methods = {}
        for mname, msig in proc["methods"].items():
            methods[mname] = {
                "args": [a["name"] for a in msig["args"]],
                "returns": msig["returns"]["type"],
            }
            fn = loaded if mname == "__call__" else getattr(loaded, mname)
            expected[mname] = to_jsonable(fn(inp))
        manifest["fixtures"][name] = {
            "object_type": "model",
            "kind": proc["type"],
            "meta": MODEL_FIXTURES[name] + ".mlem",
            "artifact": MODEL_FIXTURES[name],
            "artifact_names": list(meta["artifacts"]),
            "methods": methods,
            "call_orders": meta["call_orders"],
            "requirements": [
                r.get("module") or r.get("package_name") for r in meta.get("requirements", [])
            ],
            "input": input_names[name],
            "expected": expected,
            "expected_via": "mlem.api.load(path) then .<method>(input) / (input) for __call__",
        }
        if proc["type"].startswith("sklearn"):  # an input with all three classes
            mixed = df_mixed if isinstance(inp, type(df5)) else df_mixed.to_numpy()
            manifest["fixtures"][name]["input_mixed"] = input_names[name].replace(
                "first5", "rows_0_50_100_149"
            )
            manifest["fixtures"][name]["expected_mixed"] = {
                m: to_jsonable(getattr(loaded, m)(mixed)) for m in proc["methods"]
            }

    datas = {
        "data_dataframe": df5,
        "data_ndarray": x5,
        "data_list": [1.5, 2.5, 3.5],  # homogeneous -> `array` type
        "data_list_mixed": [1, 2.5, 3],  # int and float -> `list` type, tuple_like reader
        "data_dict": {"a": 1, "b": [1.0, 2.0], "c": "text", "d": True},
    }
    for name, value in datas.items():
        path = out / DATA_FIXTURES[name]
        api.save(value, str(path))
        meta = read_yaml(path.with_name(path.name + ".mlem"))
        loaded = api.load(str(path))
        manifest["fixtures"][name] = {
            "object_type": "data",
            "kind": meta["reader"]["data_type"]["type"],
            "reader": meta["reader"]["type"],
            "meta": DATA_FIXTURES[name] + ".mlem",
            "artifact_names": list(meta["artifacts"]),
            "loaded_python_type": value_kind(loaded),
            "expected": to_jsonable(loaded),
            "expected_via": "mlem.api.load(path)",
        }

    manifest["fixtures"]["legacy_v02"] = make_legacy_entry(out, legacy)
    manifest["fixtures"]["legacy_v02_launch_post"] = write_launch_post_legacy(out)
    # how MLEM 0.4.14 itself reads the old layout: its migrations rewrite the
    # payload in memory (model_type -> processors.model, call_orders built
    # from the method keys); record that and the predictions it gives
    import yaml
    from mlem.api.migrations import apply_migrations

    for name in ("legacy_v02", "legacy_v02_launch_post"):
        entry = manifest["fixtures"][name]
        legacy_meta = read_yaml(out / entry["meta"])
        migrated, changed = apply_migrations(copy.deepcopy(legacy_meta))
        migrated_file = out / name / "model.migrated-by-mlem-0.4.14.yaml"
        migrated_file.write_text(yaml.safe_dump(json.loads(json.dumps(migrated))))
        loaded = api.load(str(out / entry["artifact"]))
        entry["mlem_0_4_migrated_meta"] = f"{name}/{migrated_file.name}"
        entry["mlem_0_4_expected"] = {
            "predict": to_jsonable(loaded.predict(df5)),
            "predict_proba": to_jsonable(loaded.predict_proba(df5)),
        }
        entry["input_mixed"] = "iris_rows_0_50_100_149_dataframe"
        entry["mlem_0_4_expected_mixed"] = {
            "predict": to_jsonable(loaded.predict(df_mixed)),
            "predict_proba": to_jsonable(loaded.predict_proba(df_mixed)),
        }
        assert changed
    dump_json(out / "MANIFEST.json", manifest)
    return manifest


# --------------------------------------------------------------------------
# legacy 0.2 layout


def make_legacy_entry(out: Path, legacy: str) -> dict:
    """legacy: 'auto' (real 0.2 venv if present, else hand-written),
    'real' or 'handwritten'."""
    target = out / "legacy_v02"
    if legacy in ("auto", "real") and LEGACY_PYTHON.exists():
        proc = subprocess.run(
            [str(LEGACY_PYTHON), __file__, "legacy", "--out", str(out)],
            env={**os.environ, "MLEM_NO_ANALYTICS": "true"},
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0:
            return json.loads((target / "legacy.json").read_text())
        if legacy == "real":
            raise SystemExit("legacy generation failed:\n" + proc.stderr)
        print("real MLEM 0.2 failed, hand-writing legacy_v02:\n" + proc.stderr[-2000:])
    elif legacy == "real":
        raise SystemExit(f"{LEGACY_PYTHON} not found")
    return write_handwritten_legacy(out)


def _legacy_methods(df, proba_width: int) -> dict:
    frame_type = {
        "columns": list(df.columns),
        "dtypes": [str(t) for t in df.dtypes],
        "index_cols": [],
        "type": "dataframe",
    }
    methods = {}
    for mname, argname, ret in (
        ("predict", "data", {"dtype": "int64", "shape": [None], "type": "ndarray"}),
        (
            "predict_proba",
            "data",
            {"dtype": "float64", "shape": [None, proba_width], "type": "ndarray"},
        ),
        ("sklearn_predict", "X", {"dtype": "int64", "shape": [None], "type": "ndarray"}),
        (
            "sklearn_predict_proba",
            "X",
            {"dtype": "float64", "shape": [None, proba_width], "type": "ndarray"},
        ),
    ):
        methods[mname] = {
            "args": [{"name": argname, "type_": copy.deepcopy(frame_type)}],
            "name": mname.replace("sklearn_", ""),
            "returns": ret,
        }
    return methods


def write_handwritten_legacy(out: Path) -> dict:
    """Write the 0.2/0.3 layout by hand (the layout of MLEM's launch post and
    of what mlem 0.2.9 writes): top-level `model_type: {type, methods}`,
    `artifacts: {data: {hash, size, uri}}`, a plain pickle artifact."""
    import numpy
    import pandas
    import sklearn
    import yaml
    from sklearn.linear_model import LogisticRegression

    target = out / "legacy_v02"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    df, y = iris_frame()
    model = LogisticRegression(max_iter=1000).fit(df, y)
    art = target / "model"
    with open(art, "wb") as f:
        pickle.dump(model, f)
    meta = {
        "artifacts": {"data": {"hash": md5_file(art), "size": art.stat().st_size, "uri": "model"}},
        "model_type": {"methods": _legacy_methods(df, 3), "type": "sklearn"},
        "object_type": "model",
        "requirements": [
            {"module": "sklearn", "version": sklearn.__version__},
            {"module": "pandas", "version": pandas.__version__},
            {"module": "numpy", "version": numpy.__version__},
        ],
    }
    (target / "model.mlem").write_text(yaml.safe_dump(meta, default_flow_style=False))
    df5 = df.head(5)
    entry = {
        "object_type": "model",
        "kind": "sklearn",
        "layout": "0.2 (model_type at top level, no processors/call_orders)",
        "made_with": "hand-written by scripts/make_mlem_fixtures.py (no MLEM 0.2 venv)",
        "meta": "legacy_v02/model.mlem",
        "artifact": "legacy_v02/model",
        "methods": {
            m: {"args": [a["name"] for a in s["args"]], "returns": s["returns"]["type"]}
            for m, s in meta["model_type"]["methods"].items()
        },
        "input": "iris_first5_dataframe",
        "expected": {
            "predict": model.predict(df5).tolist(),
            "predict_proba": model.predict_proba(df5).tolist(),
        },
        "expected_via": "pickle.load + sklearn (hand-written fallback)",
    }
    dump_json(target / "legacy.json", entry)
    return entry


def write_launch_post_legacy(out: Path) -> dict:
    """Always hand-written: the exact shape of the rf.mlem shown in MLEM's
    launch post / 0.2 README (only `predict` and `predict_proba`, argument
    `data`, requirements sklearn/pandas/numpy), for our iris LR pickle."""
    import numpy
    import pandas
    import sklearn
    import yaml
    from sklearn.linear_model import LogisticRegression

    target = out / "legacy_v02_launch_post"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    df, y = iris_frame()
    model = LogisticRegression(max_iter=1000).fit(df, y)
    art = target / "model"
    with open(art, "wb") as f:
        pickle.dump(model, f)
    methods = _legacy_methods(df, 3)
    meta = {
        "artifacts": {"data": {"hash": md5_file(art), "size": art.stat().st_size, "uri": "model"}},
        "model_type": {
            "methods": {k: methods[k] for k in ("predict", "predict_proba")},
            "type": "sklearn",
        },
        "object_type": "model",
        "requirements": [
            {"module": "sklearn", "version": sklearn.__version__},
            {"module": "pandas", "version": pandas.__version__},
            {"module": "numpy", "version": numpy.__version__},
        ],
    }
    (target / "model.mlem").write_text(yaml.safe_dump(meta, default_flow_style=False))
    df5 = df.head(5)
    return {
        "object_type": "model",
        "kind": "sklearn",
        "layout": "0.2 launch post (model_type at top level, predict/predict_proba only)",
        "made_with": "hand-written by scripts/make_mlem_fixtures.py; loads with real mlem 0.2.9",
        "meta": "legacy_v02_launch_post/model.mlem",
        "artifact": "legacy_v02_launch_post/model",
        "methods": {
            m: {"args": [a["name"] for a in s["args"]], "returns": s["returns"]["type"]}
            for m, s in meta["model_type"]["methods"].items()
        },
        "input": "iris_first5_dataframe",
        "expected": {
            "predict": model.predict(df5).tolist(),
            "predict_proba": model.predict_proba(df5).tolist(),
        },
        "expected_via": "pickle.load + sklearn (same LR as sklearn_lr)",
    }


def make_legacy_real(out: Path) -> None:
    """Runs inside the MLEM 0.2 venv."""
    import mlem
    import mlem.api as api
    from sklearn.linear_model import LogisticRegression

    assert mlem.__version__.startswith(("0.2", "0.3")), mlem.__version__
    target = out / "legacy_v02"
    shutil.rmtree(target, ignore_errors=True)
    df, y = iris_frame()
    model = LogisticRegression(max_iter=1000).fit(df, y)
    save_kwargs = {"sample_data": df}
    if mlem.__version__.startswith("0.2"):
        save_kwargs["external"] = True  # 0.2 saves under .mlem/ otherwise
    api.save(model, str(target / "model"), **save_kwargs)
    meta = read_yaml(target / "model.mlem")
    loaded = api.load(str(target / "model"))
    df5 = df.head(5)
    entry = {
        "object_type": "model",
        "kind": meta["model_type"]["type"],
        "layout": "0.2 (model_type at top level, no processors/call_orders)",
        "made_with": f"real mlem {mlem.__version__} (mlem.api.save)",
        "generated_by": versions(),
        "meta": "legacy_v02/model.mlem",
        "artifact": "legacy_v02/model",
        "methods": {
            m: {"args": [a["name"] for a in s["args"]], "returns": s["returns"]["type"]}
            for m, s in meta["model_type"]["methods"].items()
        },
        "input": "iris_first5_dataframe",
        "expected": {
            "predict": to_jsonable(loaded.predict(df5)),
            "predict_proba": to_jsonable(loaded.predict_proba(df5)),
        },
        "expected_via": f"mlem {mlem.__version__} mlem.api.load(path).predict(input)",
    }
    dump_json(target / "legacy.json", entry)


# --------------------------------------------------------------------------
# HTTP protocol recording


class MlemServer:
    """`mlem serve fastapi` as a child process, stopped by its PID."""

    def __init__(self, model: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        mlem_cli = Path(sys.executable).with_name("mlem")
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                str(mlem_cli),
                "serve",
                "fastapi",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLEM_NO_ANALYTICS": "true"},
        )
        self._wait()

    def _wait(self, timeout=90.0):
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlem serve exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/interface.json", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("mlem serve did not come up")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, 9)
                self.proc.wait()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


_KEEP_REQ_HEADERS = ("content-type", "content-length", "accept")
_KEEP_RESP_HEADERS = ("content-type", "content-length")


def _maybe_json(text):
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return None


def exchange_record(
    description, method, path, req_headers, req_body: bytes, status, resp_headers, resp_body: bytes
) -> dict:
    req_text = req_body.decode("utf-8") if req_body is not None else ""
    resp_text = resp_body.decode("utf-8")
    return {
        "description": description,
        "request": {
            "method": method,
            "path": path,
            "headers": {k: v for k, v in req_headers.items() if k.lower() in _KEEP_REQ_HEADERS},
            "body": req_text,
            "json": _maybe_json(req_text),
        },
        "response": {
            "status": status,
            "headers": {k: v for k, v in resp_headers.items() if k.lower() in _KEEP_RESP_HEADERS},
            "body": resp_text,
            "json": _maybe_json(resp_text),
        },
    }


class RequestsRecorder:
    """Records what MLEM's HTTPClient (which uses `requests`) puts on the
    wire, by wrapping requests' HTTPAdapter.send (PreparedRequest bytes)."""

    def __init__(self):
        self.records = []

    def __enter__(self):
        import requests.adapters

        self._orig = requests.adapters.HTTPAdapter.send
        rec = self

        def send(adapter, request, *args, **kwargs):
            resp = rec._orig(adapter, request, *args, **kwargs)
            body = request.body
            if isinstance(body, str):
                body = body.encode("utf-8")
            rec.records.append((request, body or b"", resp))
            return resp

        requests.adapters.HTTPAdapter.send = send
        return self

    def __exit__(self, *exc):
        import requests.adapters

        requests.adapters.HTTPAdapter.send = self._orig

    def as_exchanges(self, description):
        out = []
        from urllib.parse import urlsplit

        for req, body, resp in self.records:
            out.append(
                exchange_record(
                    description,
                    req.method,
                    urlsplit(req.url).path,
                    dict(req.headers),
                    body,
                    resp.status_code,
                    dict(resp.headers),
                    resp.content,
                )
            )
        return out


def raw_exchange(url, description, method, path, body=None, content_type="application/json"):
    import httpx

    headers = {"content-type": content_type} if body is not None else {}
    if isinstance(body, str):
        body = body.encode("utf-8")
    r = httpx.request(method, url + path, content=body, headers=headers, timeout=30)
    return exchange_record(
        description,
        method,
        path,
        dict(r.request.headers),
        body or b"",
        r.status_code,
        dict(r.headers),
        r.content,
    )


def record_http(out: Path) -> None:
    import httpx
    from mlem.runtime.client import HTTPClient

    df, _ = iris_frame()
    df3 = df.head(3)
    http = out / "http"
    http.mkdir(parents=True, exist_ok=True)
    for old in http.glob("*.json"):  # README.md is hand-written: keep it
        old.unlink()
    logs = Path("/tmp/mlem-fixture-server-logs")
    logs.mkdir(exist_ok=True)
    index = {}

    def save(name, record):
        dump_json(http / f"{name}.json", record)
        index[name] = {
            "description": record["description"],
            "request": f"{record['request']['method']} {record['request']['path']}",
            "status": record["response"]["status"],
        }

    def save_interface(fixture, url):
        r = httpx.get(url + "/interface.json", timeout=30)
        (http / f"{fixture}.interface.json").write_bytes(r.content)
        save(
            f"{fixture}.get_interface",
            exchange_record(
                f"GET /interface.json of {fixture} (body also stored verbatim in "
                f"{fixture}.interface.json)",
                "GET",
                "/interface.json",
                dict(r.request.headers),
                b"",
                r.status_code,
                dict(r.headers),
                r.content,
            ),
        )

    def client_calls(fixture, url, calls):
        host, port = url.removeprefix("http://").split(":")
        for method, arg, desc in calls:
            client = HTTPClient(host=host, port=int(port))
            with RequestsRecorder() as rec:
                result = getattr(client, method)(arg)
            ex = rec.as_exchanges(desc)
            # first exchange is the client's own GET /interface.json
            assert ex[0]["request"]["path"] == "/interface.json", ex[0]
            call = ex[-1]
            call["client_result"] = to_jsonable(result)
            call["client_result_type"] = value_kind(result)
            save(f"{fixture}.client_{method}", call)

    # ---- sklearn LR (DataFrame in)
    with MlemServer(out / MODEL_FIXTURES["sklearn_lr"], logs / "sklearn_lr.log") as srv:
        save_interface("sklearn_lr", srv.url)
        client_calls(
            "sklearn_lr",
            srv.url,
            [
                ("predict", df3, "HTTPClient(host, port).predict(first 3 iris rows as DataFrame)"),
                ("predict_proba", df3, "HTTPClient(host, port).predict_proba(first 3 iris rows)"),
            ],
        )
        rows3 = df3.to_dict(orient="records")
        missing = [{k: v for k, v in r.items() if k != "petal_width"} for r in rows3]
        extra = [{**r, "extra_col": 1.0} for r in rows3]
        bad_type = [{**r, "sepal_length": "abc"} for r in rows3]
        cases = {
            "error_missing_column": (
                "POST",
                "/predict",
                json.dumps({"data": {"values": missing}}),
                "DataFrame rows without the petal_width column",
            ),
            "error_extra_column": (
                "POST",
                "/predict",
                json.dumps({"data": {"values": extra}}),
                "DataFrame rows with an additional column",
            ),
            "error_wrong_value_type": (
                "POST",
                "/predict",
                json.dumps({"data": {"values": bad_type}}),
                "sepal_length given as the string 'abc'",
            ),
            "error_malformed_json": (
                "POST",
                "/predict",
                '{"data": {"values": [',
                "truncated JSON body",
            ),
            "error_empty_body": ("POST", "/predict", "", "empty body with content-type json"),
            "error_missing_data_key": (
                "POST",
                "/predict",
                json.dumps({"values": rows3}),
                "body without the top-level data key",
            ),
            "error_data_is_list_of_lists": (
                "POST",
                "/predict",
                json.dumps({"data": df3.to_numpy().tolist()}),
                "a DataFrame argument sent as nested lists",
            ),
            "error_values_not_list": (
                "POST",
                "/predict",
                json.dumps({"data": {"values": "x"}}),
                "data.values is a string",
            ),
            "ok_raw_values_rows": (
                "POST",
                "/predict",
                json.dumps({"data": {"values": rows3}}),
                "hand-made body identical in shape to the client's",
            ),
            "error_empty_values": (
                "POST",
                "/predict",
                json.dumps({"data": {"values": []}}),
                "zero rows",
            ),
            "error_null_value": (
                "POST",
                "/predict",
                json.dumps({"data": {"values": [{**rows3[0], "petal_width": None}]}}),
                "a null in a float64 column",
            ),
            "ok_reordered_columns": (
                "POST",
                "/predict",
                json.dumps(
                    {"data": {"values": [{k: r[k] for k in reversed(COLUMNS)} for r in rows3]}}
                ),
                "row objects with the keys in reverse column order",
            ),
            "ok_int_values": (
                "POST",
                "/predict",
                json.dumps(
                    {"data": {"values": [{k: round(v) for k, v in r.items()} for r in rows3]}}
                ),
                "integers where float64 is declared",
            ),
            "error_unknown_method": (
                "POST",
                "/nonexistent",
                json.dumps({"data": {"values": rows3}}),
                "POST to a method that does not exist",
            ),
            "error_get_method": ("GET", "/predict", None, "GET on a method route"),
        }
        for name, (method, path, body, desc) in cases.items():
            save(f"sklearn_lr.{name}", raw_exchange(srv.url, desc, method, path, body))
        # the root redirects to the docs
        save("sklearn_lr.get_root", raw_exchange(srv.url, "GET / (redirect)", "GET", "/"))

    # ---- sklearn on ndarray
    x = df.to_numpy()
    with MlemServer(out / MODEL_FIXTURES["sklearn_ndarray"], logs / "sklearn_ndarray.log") as srv:
        save_interface("sklearn_ndarray", srv.url)
        client_calls(
            "sklearn_ndarray",
            srv.url,
            [
                ("predict", x[:3], "HTTPClient.predict(first 3 iris rows as ndarray)"),
                ("predict_proba", x[:3], "HTTPClient.predict_proba(first 3 iris rows as ndarray)"),
            ],
        )
        save(
            "sklearn_ndarray.error_wrong_shape",
            raw_exchange(
                srv.url,
                "ndarray rows of 3 values instead of 4",
                "POST",
                "/predict",
                json.dumps({"data": [[1.0, 2.0, 3.0]]}),
            ),
        )
        save(
            "sklearn_ndarray.error_not_numbers",
            raw_exchange(
                srv.url,
                "ndarray with a string element",
                "POST",
                "/predict",
                json.dumps({"data": [["a", 2.0, 3.0, 4.0]]}),
            ),
        )

    # ---- callables
    list5 = [float(v) for v in df["sepal_length"][:5]]
    with MlemServer(out / MODEL_FIXTURES["callable_func"], logs / "callable_func.log") as srv:
        save_interface("callable_func", srv.url)
        client_calls(
            "callable_func",
            srv.url,
            [
                ("predict", list5, "HTTPClient.predict(list of 5 floats) -> double()"),
            ],
        )
        save(
            "callable_func.error_wrong_list_size",
            raw_exchange(
                srv.url,
                "list of 3 floats where the signature says size 5",
                "POST",
                "/predict",
                json.dumps({"data": [1.0, 2.0, 3.0]}),
            ),
        )
        save(
            "callable_func.error_call_path",
            raw_exchange(
                srv.url,
                "POST /__call__ (the model method name, not exposed)",
                "POST",
                "/__call__",
                json.dumps({"data": list5}),
            ),
        )
    with MlemServer(out / MODEL_FIXTURES["callable_df"], logs / "callable_df.log") as srv:
        save_interface("callable_df", srv.url)
        client_calls(
            "callable_df",
            srv.url,
            [
                ("predict", df3, "HTTPClient.predict(first 3 iris rows) -> double(DataFrame)"),
            ],
        )
    with MlemServer(out / MODEL_FIXTURES["callable_class"], logs / "callable_class.log") as srv:
        save_interface("callable_class", srv.url)
        client_calls(
            "callable_class",
            srv.url,
            [
                ("predict", x[:3], "HTTPClient.predict(ndarray) -> Scaler instance __call__"),
            ],
        )

    dump_json(http / "INDEX.json", index)


# --------------------------------------------------------------------------
# benchmark


def _percentile(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100.0 * (len(values) - 1))))
    return values[k]


def bench(out: Path, n_small=2000, n_large=300, rounds=3) -> None:
    import httpx
    import mlem.api as api
    from sklearn.ensemble import RandomForestClassifier

    df, y = iris_frame()
    lines = [
        "# Real MLEM benchmark",
        "",
        f"Generated by `scripts/make_mlem_fixtures.py bench` with {json.dumps(versions())}.",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}.",
        "Server: `mlem serve fastapi` (one uvicorn worker, MLEM's own CLI) on 127.0.0.1;",
        "client: one httpx.Client on the same host, sequential requests, keep-alive.",
        "Load average (1, 5, 15 min) when the run started: "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
        + " (anything else running on the 2 cores skews every number below).",
        "",
    ]

    # raw model predict cost, for reference
    lr = api.load(str(out / MODEL_FIXTURES["sklearn_lr"]))
    t = []
    for _ in range(500):
        s = time.perf_counter()
        lr.predict(df.head(1))
        t.append(time.perf_counter() - s)
    raw_1 = statistics.median(t) * 1000
    big = df.sample(1000, replace=True, random_state=0).reset_index(drop=True)
    t = []
    for _ in range(50):
        s = time.perf_counter()
        lr.predict(big)
        t.append(time.perf_counter() - s)
    raw_1000 = statistics.median(t) * 1000

    results = []
    bench_log = Path("/tmp/mlem-bench-server.log")
    with (
        MlemServer(out / MODEL_FIXTURES["sklearn_lr"], bench_log) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        cases = [("1 row", df.head(1), n_small), ("1000 rows", big, n_large)] * rounds
        for i, (label, frame, n) in enumerate(cases):
            body = json.dumps({"data": {"values": frame.to_dict(orient="records")}})
            headers = {"content-type": "application/json"}
            for _ in range(min(20, n)):  # warm-up
                client.post("/predict", content=body, headers=headers).raise_for_status()
            lat = []
            start = time.perf_counter()
            for _ in range(n):
                s = time.perf_counter()
                r = client.post("/predict", content=body, headers=headers)
                lat.append(time.perf_counter() - s)
                if r.status_code != 200:
                    raise RuntimeError(r.text)
            total = time.perf_counter() - start
            results.append(
                (
                    i // 2 + 1,
                    label,
                    n,
                    len(body),
                    n / total,
                    statistics.median(lat) * 1000,
                    _percentile(lat, 99) * 1000,
                    max(lat) * 1000,
                )
            )

    lines += [
        "## POST /predict, sklearn_lr fixture (LogisticRegression, iris DataFrame)",
        "",
        f"{rounds} rounds against the same server process; rounds vary on a shared 2-core machine.",
        "",
        "| round | payload | requests | body bytes | requests/s | p50 ms | p99 ms | max ms |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rnd, label, n, size, rps, p50, p99, mx in sorted(results, key=lambda r: (r[1], r[0])):
        lines.append(
            f"| {rnd} | {label} | {n} | {size} | {rps:.1f} | {p50:.2f} | {p99:.2f} | {mx:.2f} |"
        )
    lines += [
        "",
        f"In-process `model.predict` (no HTTP), median: 1 row {raw_1:.3f} ms, "
        f"1000 rows {raw_1000:.3f} ms.",
        "",
    ]

    # save / load of an iris random forest
    rf = RandomForestClassifier(n_estimators=100, random_state=42).fit(df, y)
    tmp = Path("/tmp/mlem-bench-rf")
    save_t, load_t, pk_save, pk_load = [], [], [], []
    for _ in range(5):
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        s = time.perf_counter()
        api.save(rf, str(tmp / "rf"), sample_data=df)
        save_t.append(time.perf_counter() - s)
        s = time.perf_counter()
        loaded = api.load(str(tmp / "rf"))
        load_t.append(time.perf_counter() - s)
        assert (loaded.predict(df.head(5)) == rf.predict(df.head(5))).all()
        s = time.perf_counter()
        with open(tmp / "rf.pkl", "wb") as f:
            pickle.dump(rf, f)
        pk_save.append(time.perf_counter() - s)
        s = time.perf_counter()
        with open(tmp / "rf.pkl", "rb") as f:
            pickle.load(f)
        pk_load.append(time.perf_counter() - s)
    size = (tmp / "rf").stat().st_size
    # a fresh process per load: `import mlem.api` and the first load, which is
    # what a CLI call or a server start pays
    cold = []
    code = (
        "import time; t0 = time.perf_counter(); import mlem.api; t1 = time.perf_counter(); "
        f"mlem.api.load({str(tmp / 'rf')!r}); t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
    )
    for _ in range(3):
        r = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "MLEM_NO_ANALYTICS": "true"},
            check=True,
        )
        cold.append([float(v) for v in r.stdout.split()[-2:]])
    shutil.rmtree(tmp, ignore_errors=True)

    def fmt(ts):
        med, lo, hi = (statistics.median(ts) * 1000, min(ts) * 1000, max(ts) * 1000)
        return f"{med:.1f} ms (min {lo:.1f}, max {hi:.1f})"

    lines += [
        "## mlem.api.save / load, iris RandomForestClassifier(n_estimators=100)",
        "",
        f"Artifact size {size} bytes; 5 rounds in one process "
        "(the first round pays imports/caches).",
        "",
        "| operation | median (min, max) |",
        "| --- | --- |",
        f"| `mlem.api.save(rf, path, sample_data=df)` | {fmt(save_t)} |",
        f"| `mlem.api.load(path)` | {fmt(load_t)} |",
        f"| `pickle.dump` | {fmt(pk_save)} |",
        f"| `pickle.load` | {fmt(pk_load)} |",
        "",
        f"First round: save {save_t[0] * 1000:.1f} ms, load {load_t[0] * 1000:.1f} ms.",
        "",
        "Fresh process each time (3 runs): `import mlem.api` "
        + ", ".join(f"{c[0] * 1000:.0f}" for c in cold)
        + " ms; then the first `mlem.api.load` "
        + ", ".join(f"{c[1] * 1000:.0f}" for c in cold)
        + " ms.",
        "",
    ]
    lines += [
        "Load average when the run ended: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + ".",
        "",
    ]
    (out / "BENCH_MLEM.md").write_text("\n".join(lines))
    print("\n".join(lines))


# --------------------------------------------------------------------------
# a MLEM project with MLEM's other objects


PROJECT_APP = "mlem-migrate-app"  # the heroku app name the declarations use


def make_project(out: Path) -> dict:
    """Write project/: what a MLEM 0.4 user's repository holds, made by MLEM itself.

    Everything is written through MLEM's own classes and API (what `mlem declare`,
    `mlem link` and `mlem deployment run` call), then read back with MLEM to record
    what MLEM makes of it in project/OBJECTS.json.
    """
    import mlem
    import mlem.api as api
    from mlem.contrib.docker.base import (
        DockerContainer,
        DockerDirBuilder,
        DockerImageBuilder,
        DockerImageOptions,
    )
    from mlem.contrib.heroku.meta import HerokuAppMeta, HerokuDeployment, HerokuEnv, HerokuState
    from mlem.contrib.kubernetes.base import K8sDeployment
    from mlem.contrib.pip.base import PipBuilder, WhlBuilder
    from mlem.contrib.sagemaker.meta import SagemakerDeployment, SagemakerEnv
    from sklearn.ensemble import RandomForestClassifier

    assert mlem.__version__.startswith("0.4"), mlem.__version__
    root = out / "project"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    proj = str(root)
    api.init(proj)  # .mlem.yaml: the project root MLEM resolves links against

    df, y = iris_frame()
    rf = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(df, y)
    api.save(rf, "models/rf", project=proj, sample_data=df)
    api.save(df.head(5), "data/iris_sample", project=proj)
    (root / "data").mkdir(exist_ok=True)
    df.iloc[[0, 50, 100, 149]].to_csv(root / "data" / "new_data.csv", index=False)

    # links: at the root, in a sub-folder (paths stay project-relative), a chain
    api.link("models/rf", source_project=proj, target="latest", target_project=proj)
    api.link("models/rf", source_project=proj, target="links/rf_link", target_project=proj)
    api.link("latest", source_project=proj, target="links/chain", target_project=proj,
             follow_links=False)

    # envs and deployments (what `mlem declare env|deployment ...` writes)
    HerokuEnv(api_key="mlem-test-pass").dump("staging", project=proj)
    SagemakerEnv(role="arn:aws:iam::123456789012:role/sagemaker", region="us-east-1",
                 account="123456789012", bucket="mlem-migrate", profile="ml",
                 ecr_repository="mlem-migrate").dump("aws", project=proj)
    HerokuDeployment(app_name=PROJECT_APP, env="staging").dump("heroku_app", project=proj)
    HerokuDeployment(app_name="mlem-inline-app", region="eu",
                     env=HerokuEnv(api_key="inline-key")).dump("heroku_inline", project=proj)
    SagemakerDeployment(method="predict", instance_type="ml.m5.large", env="aws",
                        endpoint_name="mlem-migrate-endpoint").dump("sm_app", project=proj)
    DockerContainer(container_name="mlem-migrate", ports=["8093:8080"],
                    image=DockerImageOptions(name="mlem-migrate-img", tag="v1")
                    ).dump("dc_app", project=proj)
    K8sDeployment(namespace="ml").dump("k8s_app", project=proj)

    # builders (what `mlem declare builder ...` writes)
    PipBuilder(package_name="iris_rf", target="build/pip").dump("build_pip", project=proj)
    WhlBuilder(package_name="iris_rf_whl", target="build/whl", version="1.0.0"
               ).dump("build_whl", project=proj)
    DockerImageBuilder(image=DockerImageOptions(name="mlem-migrate-img", tag="v1"),
                       server={"type": "fastapi"}).dump("build_docker", project=proj)
    DockerDirBuilder(target="build/docker", server={"type": "fastapi"}
                     ).dump("build_dir", project=proj)

    # what `mlem deployment run` left behind for an app it deployed: its state file
    dep = api.load_meta("heroku_app", project=proj)
    model = api.load_meta("models/rf", project=proj)
    state = HerokuState(declaration=dep,
                        app=HerokuAppMeta(name=PROJECT_APP,
                                          web_url=f"https://{PROJECT_APP}.herokuapp.com/",
                                          meta_info={"id": "01234567-89ab-cdef-0123-456789abcdef"}),
                        release_state={"id": "release-by-mlem", "status": "succeeded"})
    state.update_model(model)
    dep.update_state(state)

    # what MLEM itself makes of these files
    loaded = api.load("latest", project=proj)
    new = df.iloc[[0, 50, 100, 149]]
    objects = {
        "generated_by": versions(),
        "generator": "scripts/make_mlem_fixtures.py project",
        "model": "models/rf",
        "new_data": "data/new_data.csv",
        "expected_predict": to_jsonable(rf.predict(new)),
        "links": {name: {"resolves_to": api.load_meta(name, project=proj,
                                                        follow_links=True).loc.path,
                         "predict_via_mlem": to_jsonable(
                             api.load(name, project=proj).predict(new))}
                  for name in ("latest", "links/rf_link", "links/chain")},
        "deployments": {
            name: {"type": meta.type,
                   "env": (lambda e: {k: v for k, v in e.dict().items()
                                      if v is not None})(meta.get_env())
                   if meta.type != "kubernetes" else None,
                   "fields": json.loads(json.dumps(
                       {k: v for k, v in meta.dict().items()
                        if v is not None and k not in ("env", "state_manager")}))}
            for name in ("heroku_app", "heroku_inline", "sm_app", "dc_app", "k8s_app")
            for meta in [api.load_meta(name, project=proj)]},
        "builders": {name: json.loads(json.dumps(api.load_meta(name, project=proj).dict()))
                     for name in ("build_pip", "build_whl", "build_docker", "build_dir")},
        "heroku_state": "heroku_app.mlem.state",
        "app_name": PROJECT_APP,
    }
    assert (loaded.predict(new) == rf.predict(new)).all()
    dump_json(root / "OBJECTS.json", objects)
    return objects


# --------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("command", choices=["models", "legacy", "http", "bench", "project", "all"])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument(
        "--legacy",
        choices=["auto", "real", "handwritten"],
        default="auto",
        help="how to make legacy_v02/ (models command)",
    )
    p.add_argument("--handwritten", action="store_true", help="legacy: hand-write instead")
    p.add_argument("--bench-small", type=int, default=2000)
    p.add_argument("--bench-large", type=int, default=300)
    p.add_argument("--bench-rounds", type=int, default=3)
    a = p.parse_args(argv)
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if a.command == "legacy":
        if a.handwritten:
            write_handwritten_legacy(out)
        else:
            make_legacy_real(out)
        return
    if a.command == "project":
        make_project(out)
        return
    if a.command in ("models", "all"):
        make_models(out, a.legacy)
    if a.command in ("http", "all"):
        record_http(out)
    if a.command in ("bench", "all"):
        bench(out, a.bench_small, a.bench_large, a.bench_rounds)


if __name__ == "__main__":
    main()
