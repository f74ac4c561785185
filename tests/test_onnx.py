"""ONNX models (issue 14): graphs as models, exports checked for parity, ``--runtime onnx``.

Everything here is real: graphs made by skl2onnx/onnxmltools or onnx.helper, ONNX Runtime,
``mlem serve`` processes on 127.0.0.1 called with :class:`~mlem_lib.client.HTTPClient`.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import numpy as np
import pytest

import mlem_lib.api as mlem
from mlem_lib.build.onnx import ParityError
from mlem_lib.errors import DeclarationError, SchemaError, ServeError
from mlem_lib.runner import LoadedModel
from tests.conftest import REPO_ROOT
from tests.helpers import tabular

onnx = pytest.importorskip("onnx")


# --- graphs saved as models ----------------------------------------------------------------

def _two_input_graph() -> object:
    """sum = a + b (float, (n, 3)); count = the int64 ids, cast to float: two inputs of
    different types, two outputs, a free batch axis named N."""
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3])
    b = helper.make_tensor_value_info("b", TensorProto.INT64, ["N", 3])
    total = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 3])
    as_float = helper.make_tensor_value_info("b_float", TensorProto.FLOAT, ["N", 3])
    nodes = [helper.make_node("Cast", ["b"], ["b_float"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["a", "b_float"], ["sum"])]
    graph = helper.make_graph(nodes, "two_inputs", [a, b], [total, as_float])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_graph_inputs_and_outputs_become_the_schema(tmp_path):
    path = str(tmp_path / "two")
    meta = mlem.save(_two_input_graph(), path)
    sig = meta.model_type.methods["predict"]
    arg = sig.args[0].type_.model_dump()
    assert arg == {"type": "dict", "item_types": {
        "a": {"type": "ndarray", "shape": [None, 3], "dtype": "float32"},
        "b": {"type": "ndarray", "shape": [None, 3], "dtype": "int64"}}}
    assert sig.returns.describe() == ("dict{sum: ndarray[float32, (n, 3)], "
                                      "b_float: ndarray[float32, (n, 3)]}")
    assert [r.module for r in meta.python_requirements()] == ["numpy", "onnxruntime"]
    loaded = LoadedModel.load(path)
    out = loaded.call("predict", {"a": [[0.5, 1, 2]], "b": [[1, 2, 3]]})
    np.testing.assert_array_equal(out["sum"], np.array([[1.5, 3, 5]], dtype=np.float32))
    with pytest.raises(SchemaError) as err:
        loaded.call("predict", {"a": [[0.5, 1, 2]], "b": [[1.5, 2, 3]]})
    assert err.value.field == "b"


@pytest.fixture(scope="module")
def rf_onnx_file(tmp_path_factory, iris, iris_rf):
    from skl2onnx import to_onnx

    X, _ = iris
    graph = to_onnx(iris_rf, X.to_numpy(np.float32)[:1], options={"zipmap": False})
    path = tmp_path_factory.mktemp("onnx") / "rf.onnx"
    path.write_bytes(graph.SerializeToString())
    return path


def test_an_onnx_file_is_saved_by_path(rf_onnx_file, tmp_path):
    meta = mlem.save(str(rf_onnx_file), str(tmp_path / "rf"))
    assert meta.model_type.type == "onnx"
    assert (tmp_path / "rf").read_bytes() == rf_onnx_file.read_bytes()
    arg = meta.model_type.methods["predict"].args[0].type_
    assert (arg.shape, arg.dtype) == ([None, 4], "float32")
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        mlem.save(str(tmp_path / "missing.onnx"), str(tmp_path / "x"))
    (tmp_path / "bad.onnx").write_bytes(b"not a graph")
    with pytest.raises(TypeError, match="not an ONNX model"):
        mlem.save(str(tmp_path / "bad.onnx"), str(tmp_path / "x"))


def test_an_onnx_file_served_and_called_through_httpclient(rf_onnx_file, tmp_path, iris,
                                                            iris_rf, start_server):
    from mlem_lib.client import HTTPClient

    X, _ = iris
    mlem.save(str(rf_onnx_file), str(tmp_path / "rf"))
    mlem.save(_two_input_graph(), str(tmp_path / "two"))
    server = start_server(str(tmp_path / "rf"))
    client = HTTPClient(server.url)
    out = client.predict(X.to_numpy()[:20])
    np.testing.assert_array_equal(out["label"], iris_rf.predict(X[:20]))
    np.testing.assert_allclose(out["probabilities"], iris_rf.predict_proba(X[:20]), atol=1e-6)
    # wrong shape, wrong type: a 400 naming the input, never a 5xx
    for data in ([[1.0, 2.0, 3.0]], [["a", "b", "c", "d"]], [[1e300, 1, 1, 1]]):
        answer = httpx.post(f"{server.url}/predict", json={"data": data})
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] in ("data", "input"), answer.text
    two = start_server(str(tmp_path / "two"))
    ok = HTTPClient(two.url).predict({"a": [[1.0, 2.0, 3.0]], "b": [[1, 1, 1]]})
    np.testing.assert_array_equal(ok["sum"], [[2.0, 3.0, 4.0]])
    bad = httpx.post(f"{two.url}/predict",
                     json={"data": {"a": [[1.0, 2.0, 3.0]], "b": [[1, 1]]}})
    assert bad.status_code == 400 and bad.json()["field"] == "b", bad.text
    missing = httpx.post(f"{two.url}/predict", json={"data": {"a": [[1.0, 2.0, 3.0]]}})
    assert missing.status_code == 400 and missing.json()["field"] == "b", missing.text


# --- export: mlem build MODEL onnx --------------------------------------------------------

@pytest.fixture(scope="module")
def native_models(tmp_path_factory, iris):
    """Saved native models with their samples: name -> (path, sample)."""
    import lightgbm
    import xgboost
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = iris
    people, churn = tabular.customers()
    pipeline = make_pipeline(
        ColumnTransformer([("text", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
                           ("num", StandardScaler(), ["age", "income"])]),
        LogisticRegression()).fit(people, churn)
    root = tmp_path_factory.mktemp("native")
    models = {
        "rf": (RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y), X),
        "lr": (LogisticRegression(max_iter=500).fit(X, y), X),
        "pipeline": (pipeline, people),
        "lightgbm": (lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y), X),
        "xgboost": (xgboost.XGBClassifier(n_estimators=20).fit(X, y), X),
    }
    out = {}
    for name, (model, sample) in models.items():
        path = str(root / name)
        mlem.save(model, path, sample_data=sample)
        out[name] = (path, sample)
    return out


@pytest.mark.parametrize("name", ["rf", "lr", "pipeline", "lightgbm", "xgboost"])
def test_export_answers_like_the_model(name, native_models, tmp_path):
    path, sample = native_models[name]
    result = mlem.build(path, "onnx", {"target": str(tmp_path)})
    native_meta, twin_meta = mlem.load_meta(path), mlem.load_meta(result.path)
    # same input schema (a DataFrame model takes the same columns), same return schemas
    for method in ("predict", "predict_proba"):
        assert twin_meta.method(method) == native_meta.method(method)
    assert twin_meta.model_type.type == "onnx"
    assert result.onnx_file.endswith(".onnx")
    onnx.checker.check_model(result.onnx_file)
    # parity recorded per method in the new .mlem
    recorded = twin_meta.onnx_export["parity"]
    assert recorded["predict"]["passed"] and recorded["predict"]["mismatches"] == 0
    assert recorded["predict_proba"]["max_abs_diff"] < 1e-5
    assert recorded["predict"]["rows"] == len(sample)
    assert twin_meta.onnx_export["source"]["model_hash"] == native_meta.model_hash
    # and the twin answers like the model, loaded on its own
    native, twin = mlem.load(path), LoadedModel.load(result.path)
    np.testing.assert_array_equal(twin.call("predict", sample), native.predict(sample))
    np.testing.assert_allclose(twin.call("predict_proba", sample), native.predict_proba(sample),
                               rtol=0, atol=1e-5)
    assert twin.call("predict_proba", sample).dtype == native.predict_proba(sample).dtype


def test_export_above_tolerance_is_refused_naming_method_and_difference(native_models,
                                                                        tmp_path):
    path, _ = native_models["lr"]
    with pytest.raises(ParityError) as err:
        mlem.build(path, "onnx", {"target": str(tmp_path / "out"), "tolerance": 0})
    message = str(err.value)
    assert "predict_proba: differs from the native model by up to" in message
    assert "above the tolerance 0" in message
    diff = err.value.parity["predict_proba"]["max_abs_diff"]
    assert 0 < diff < 1e-5 and f"{diff:.3g}" in message
    assert "predict:" not in message  # the labels are equal
    assert not (tmp_path / "out").exists()


def test_cli_build_onnx(native_models, tmp_path):
    path, _ = native_models["lr"]
    mlem_cli = [sys.executable, "-m", "mlem_lib.cli"]
    refused = subprocess.run([*mlem_cli, "build", path, "onnx", "--target", str(tmp_path),
                              "--tolerance", "0"], capture_output=True, text=True,
                             cwd=REPO_ROOT, timeout=300)
    assert refused.returncode == 1
    error = [line for line in refused.stderr.splitlines() if line.startswith("error")]
    assert len(error) == 1 and "predict_proba" in error[0], refused.stderr
    done = subprocess.run([*mlem_cli, "build", path, "onnx", "--target", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "predict_proba: max abs diff" in done.stdout
    assert "decision_function" in done.stdout  # said to stay native
    assert (tmp_path / "lr.onnx").exists() and (tmp_path / "lr.onnx.mlem").exists()


def test_no_converter_is_a_clear_build_error(tmp_path):
    from mlem_lib.errors import BuildError

    mlem.save(lambda xs: [x + 1 for x in xs], str(tmp_path / "f"), sample_data=[1.0])
    with pytest.raises(BuildError, match="no ONNX converter for callable models"):
        mlem.build(str(tmp_path / "f"), "onnx", {"target": str(tmp_path / "out")})


# --- serving through ONNX Runtime ---------------------------------------------------------

def _float32_losing_model(tmp_path) -> str:
    """A linear model on values near 2**24, where float32 cannot hold every integer: its
    ONNX export answers differently, so it fails its parity check."""
    from sklearn.linear_model import LinearRegression

    X = np.arange(2**24, 2**24 + 40, dtype=np.float64).reshape(-1, 1)
    model = LinearRegression().fit(X, X[:, 0] - 2**24)
    path = str(tmp_path / "big")
    mlem.save(model, path, sample_data=X)
    return path


def test_runtime_auto_falls_back_to_native_saying_why(tmp_path, monkeypatch):
    from mlem_lib.serve.model_runtime import with_runtime

    monkeypatch.setenv("MLEM_ONNX_CACHE_DIR", str(tmp_path / "cache"))
    path = _float32_losing_model(tmp_path)
    loaded = LoadedModel.load(path)
    said: list[str] = []
    assert with_runtime(loaded, "auto", path=path, log=said.append) is loaded
    assert "serving natively" in said[-1] and "predict: differs" in said[-1]
    with pytest.raises(ServeError, match=r"--runtime onnx: .*predict: differs"):
        with_runtime(loaded, "onnx", path=path)
    f = str(tmp_path / "f")
    mlem.save(lambda xs: [x + 1 for x in xs], f, sample_data=[1.0])
    said.clear()
    assert with_runtime(LoadedModel.load(f), "auto", log=said.append).model is not None
    assert "no ONNX converter for callable models" in said[-1]


def test_serve_runtime_onnx_same_interface_and_answers(native_models, start_server, tmp_path):
    path, sample = native_models["lr"]
    body = {"data": {"values": sample.head(25).to_dict("records")}}
    cache = {"MLEM_ONNX_CACHE_DIR": str(tmp_path / "cache")}
    native = start_server(path)
    fast = start_server(path, "--runtime", "onnx", env=cache)
    assert "predict, predict_proba answered by ONNX Runtime" in fast.output()
    assert "decision_function by the native model" in fast.output()
    assert httpx.get(f"{fast.url}/interface.json").json() == \
        httpx.get(f"{native.url}/interface.json").json()
    assert httpx.get(f"{fast.url}/health").json() == httpx.get(f"{native.url}/health").json()
    for method in ("predict", "predict_proba", "decision_function", "predict_log_proba"):
        a = httpx.post(f"{native.url}/{method}", json=body)
        b = httpx.post(f"{fast.url}/{method}", json=body)
        assert a.status_code == b.status_code == 200
        np.testing.assert_allclose(np.array(b.json()), np.array(a.json()), rtol=0, atol=1e-5)
    assert httpx.post(f"{fast.url}/predict", json=body).json() == \
        httpx.post(f"{native.url}/predict", json=body).json()
    # the twin was cached by the model's hash: a second server does not export again
    again = start_server(path, "--runtime", "onnx", env=cache)
    assert "exported the ONNX twin" in fast.output()
    assert "exported the ONNX twin" not in again.output()
    # the same errors for the same bad input
    bad = {"data": {"values": [{**sample.iloc[0].to_dict(), "sepal_length": "x"}]}}
    assert httpx.post(f"{fast.url}/predict", json=bad).json() == \
        httpx.post(f"{native.url}/predict", json=bad).json()


def test_given_onnx_model_must_be_an_export_of_the_served_model(native_models, tmp_path):
    from mlem_lib.serve.model_runtime import with_runtime

    rf_path, _ = native_models["rf"]
    lr_path, sample = native_models["lr"]
    lr_twin = mlem.build(lr_path, "onnx", {"target": str(tmp_path)}).path
    served = with_runtime(LoadedModel.load(lr_path), "onnx", onnx_model=lr_twin)
    assert served.call("predict", sample).tolist() == mlem.load(lr_path).predict(sample).tolist()
    with pytest.raises(ServeError, match="was exported from another model"):
        with_runtime(LoadedModel.load(rf_path), "onnx", onnx_model=lr_twin)


def test_declaration_field_model_runtime():
    from mlem_lib.deploy.declaration import parse_declaration

    decl = parse_declaration({"type": "local", "runtime": "process", "model_runtime": "onnx"})
    assert decl.server_env() == {"MLEM_MODEL_RUNTIME": "onnx"}
    assert parse_declaration({"type": "local", "runtime": "container"}).server_env() == {}
    with pytest.raises(DeclarationError, match="field 'model_runtime'"):
        parse_declaration({"type": "local", "model_runtime": "gpu"})


@pytest.mark.slow
def test_local_deployment_with_model_runtime_onnx(declare, removed_after, saved_lr, iris,
                                                  tmp_path, monkeypatch):
    from mlem_lib.deploy import deploy, status
    from tests.conftest import free_port

    cache = tmp_path / "cache"
    monkeypatch.setenv("MLEM_ONNX_CACHE_DIR", str(cache))  # passed on to the server
    decl = removed_after(declare("fast", type="local", runtime="process", port=free_port(),
                                 model_runtime="onnx"))
    state = deploy(decl, saved_lr, progress=False)
    assert state.model_hash == mlem.load_meta(saved_lr).model_hash
    assert status(decl).healthy
    assert list(cache.glob("*/model.onnx.mlem")), "the server did not export an ONNX twin"
    X, _ = iris
    answer = httpx.post(f"{state.url}/predict_proba",
                        json={"data": {"values": X.head(10).to_dict("records")}}, timeout=30)
    np.testing.assert_allclose(answer.json(), mlem.load(saved_lr).predict_proba(X.head(10)),
                               rtol=0, atol=1e-5)
