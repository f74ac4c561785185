"""Issue 13: ``save`` options users expect from MLflow, and one truth about a model in
``mlem show``, the README, the server, ``/docs`` and the smoke request."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings

import httpx
import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

import mlem_lib.api as mlem
from mlem_lib.data.pandas import DataFrameType
from mlem_lib.errors import MethodNotFoundError
from mlem_lib.runner import LoadedModel
from mlem_lib.serve.app import create_app
from mlem_lib.serve.settings import ServerSettings
from tests._fixtures.fidelity import pipeline_frame, schedule_frame
from tests.conftest import REPO_ROOT


def _app(path: str) -> TestClient:
    return TestClient(create_app(LoadedModel.load(path), ServerSettings()))


# --- save options ----------------------------------------------------------------------

def test_input_schema_declares_what_the_sample_cannot(fidelity_models, tmp_path):
    model = fidelity_models["schedule"]["model"]
    schema = DataFrameType.infer(schedule_frame()).model_copy(update={"date_format": "epoch_ms"})
    path = str(tmp_path / "epoch")
    meta = mlem.save(model, path, input_schema=schema)  # no sample at all
    sig = meta.model_type.methods["predict"]
    assert sig.args[0].type_.date_format == "epoch_ms"
    assert sig.returns.describe() == "ndarray[float64, (n)]"  # called on the schema's example
    booked = int(pd.Timestamp("2024-03-01T08:00:00Z").timestamp() * 1000)
    departs = int(pd.Timestamp("2024-03-01T11:00:00Z").timestamp() * 1000)
    r = _app(path).post("/predict", json={"data": {"values": [
        {"booked": booked, "departs": departs, "express": True}]}})
    assert r.status_code == 200 and r.json() == [103.0], r.text

    # per method, as a sample: predict_proba takes float32 columns, predict the sample's
    X, y = pipeline_frame()
    numbers = X[["x"]].assign(z=X["x"] * 2)
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression().fit(numbers, y)
    path = str(tmp_path / "per_method")
    meta = mlem.save(lr, path, sample_data=numbers,
                     input_schema={"predict_proba": numbers.astype("float32")})
    methods = meta.model_type.methods
    assert methods["predict_proba"].args[0].type_.dtypes == ["float32", "float32"]
    assert methods["predict"].args[0].type_.dtypes == ["float64", "float64"]


def test_extra_requirements_and_methods(fidelity_models, tmp_path):
    from mlem_lib.build.pip import build_pip

    model = fidelity_models["pipeline"]["model"]
    X, _ = pipeline_frame()
    path = str(tmp_path / "pipe")
    meta = mlem.save(model, path, sample_data=X, methods=["predict", "predict_proba"],
                     extra_requirements=["shap==0.46.0", "numpy>=1.26", "tabulate"])
    assert list(meta.model_type.methods) == ["predict", "predict_proba"]
    lines = [r.pip_line() for r in meta.python_requirements()]
    assert "shap==0.46.0" in lines and "numpy>=1.26" in lines and "tabulate" in lines
    assert not any(line.startswith("numpy==") for line in lines)  # the declared line wins
    package = build_pip(path, str(tmp_path / "dist"), package_name="fid-pipe")
    assert {"shap==0.46.0", "numpy>=1.26", "tabulate"} <= set(package.requirements)
    routes = [r.path for r in create_app(LoadedModel.load(path)).routes
              if "POST" in getattr(r, "methods", ()) and r.path != "/invocations"]
    assert sorted(routes) == ["/predict", "/predict_proba"]  # nothing but the chosen ones
    with pytest.raises(MethodNotFoundError, match="predict_probability"):
        mlem.save(model, str(tmp_path / "bad"), sample_data=X, methods=["predict_probability"])
    from mlem_lib.errors import MetadataError

    with pytest.raises(MetadataError, match="pip install shap"):
        mlem.save(model, str(tmp_path / "bad2"), sample_data=X,
                  extra_requirements=["pip install shap"])


def test_code_paths_ship_a_package_that_is_imported_by_name(tmp_path, iris):
    src = tmp_path / "src" / "fid_plugins"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "scalers.py").write_text("def scale(x):\n    return x * 10\n")
    sys.path.insert(0, str(src.parent))
    try:
        def predict(df: pd.DataFrame) -> list[float]:
            import importlib

            # a plugin chosen by name at run time: no import statement to discover
            scale = importlib.import_module("fid_plugins." + "scalers").scale
            return [scale(v) for v in df["sepal_length"]]

        path = str(tmp_path / "models" / "plugin")
        meta = mlem.save(predict, path, sample_data=iris[0].head(3), code_paths=[str(src)])
    finally:
        sys.path.remove(str(src.parent))
        for name in [m for m in sys.modules if m.startswith("fid_plugins")]:
            del sys.modules[name]
    assert [r.name for r in meta.custom_requirements()] == ["fid_plugins"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = textwrap.dedent(f"""
        import json, sys
        import pandas as pd
        import mlem_lib.api as mlem
        df = pd.DataFrame({{"sepal_length": [1.0, 2.5], "sepal_width": [0.0, 0.0],
                           "petal_length": [0.0, 0.0], "petal_width": [0.0, 0.0]}})
        print(json.dumps(mlem.apply({path!r}, df)))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == [10.0, 25.0]


def test_pipeline_without_sample_gets_its_fitted_columns(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = pipeline_frame()
    # OneHotEncoder's default refuses unknown categories: the schema's guess must be valid
    model = make_pipeline(ColumnTransformer([("onehot", OneHotEncoder(), ["city", "plan"]),
                                             ("scale", StandardScaler(), ["x"])]),
                          LogisticRegression()).fit(X, y)
    path = str(tmp_path / "nosample")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "could not call predict" warning
        meta = mlem.save(model, path)
    sig = meta.model_type.methods["predict"]
    schema = sig.args[0].type_
    assert schema.columns == ["city", "plan", "x"]
    assert schema.dtypes[2] == "float64" and schema.dtypes[0] in ("str", "object")
    assert sig.returns.describe() == "ndarray[int64, (n)]"
    rows = X.head(4)
    r = _app(path).post("/predict", json={"data": {"values": rows.to_dict("records")}})
    assert r.status_code == 200 and r.json() == model.predict(rows).tolist(), r.text


# --- one truth ---------------------------------------------------------------------------

def _readme_frameworks() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index("Frameworks:")
    return " ".join(text[start:text.index("\n\n", start)].split())


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_show_and_readme_say_how_boosting_models_are_stored(kind, iris, tmp_path):
    import lightgbm
    import xgboost

    X, y = iris
    if kind == "xgboost":
        estimator = xgboost.XGBClassifier(n_estimators=3).fit(X, y)
        booster = estimator.get_booster()
    else:
        estimator = lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y)
        booster = estimator.booster_
    readme = _readme_frameworks()
    for name, model in (("estimator", estimator), ("booster", booster)):
        path = str(tmp_path / f"{kind}-{name}")
        mlem.save(model, path, sample_data=X)
        first = mlem.show(path).splitlines()[0]
        stored = re.search(r"saved as (.+)\)$", first).group(1)
        meta = mlem.load_meta(path)
        native = meta.model_type.io.type != "pickle"
        assert ("native" in stored) == native and ("pickle" in stored) == (not native)
        loaded = mlem.load(path)
        assert type(loaded) is type(model)
        if kind == "xgboost":
            assert native  # both APIs: xgboost's JSON format
            assert "xgboost (scikit-learn API and raw Boosters, both saved in xgboost's JSON" \
                   " format, no pickle)" in readme
            if name == "estimator":
                np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        else:
            assert native == (name == "booster")
            assert "LightGBM (raw Boosters saved in LightGBM's text format; its scikit-learn" \
                   " API is pickled" in readme


def test_a_functions_method_is_listed_and_routed_as_predict(fidelity_models, start_server):
    entry = fidelity_models["function"]
    methods = [line.split()[0] for line in
               mlem.show(entry["path"]).split("Methods\n", 1)[1].split("\n\n")[0].splitlines()[2:]]
    assert methods == ["predict"]
    server = start_server(entry["path"])
    rows = {"data": {"values": entry["sample"].head(2).to_dict("records")}}
    expected = entry["model"](entry["sample"].head(2)).tolist()
    for route in ("/predict", "/__call__"):
        r = httpx.post(server.url + route, json=rows, timeout=30)
        assert r.status_code == 200 and r.json() == expected, (route, r.text)
    assert list(httpx.get(server.url + "/interface.json").json()["methods"]) == ["predict"]
    assert "/__call__" not in httpx.get(server.url + "/openapi.json").json()["paths"]


def test_docs_show_the_saved_row_for_every_method(fidelity_models):
    entry = fidelity_models["pipeline"]
    client = _app(entry["path"])
    paths = client.get("/openapi.json").json()["paths"]
    first = json.loads(entry["sample"].head(1).to_json(orient="records"))
    meta = mlem.load_meta(entry["path"])
    assert len(meta.model_type.methods) == 4
    for method in meta.model_type.methods:
        body = paths[f"/{method}"]["post"]["requestBody"]["content"]["application/json"]
        assert body["example"] == {"data": {"values": first}}, method
        assert client.post(f"/{method}", json=body["example"]).status_code == 200


def test_smoke_request_sends_the_saved_row(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from mlem_lib.deploy.smoke import SmokeRequest

    X, y = pipeline_frame()
    model = make_pipeline(ColumnTransformer([("onehot", OneHotEncoder(), ["city", "plan"])],
                                            remainder="passthrough"),
                          LogisticRegression()).fit(X, y)
    path = str(tmp_path / "strict")
    mlem.save(model, path, sample_data=X)
    request = SmokeRequest.for_model(mlem.load_meta(path))
    r = _app(path).post(f"/{request.method}", json=request.body)
    assert r.status_code == 200, r.text  # an empty-string city would make the encoder raise
    mlem.save(model, path, sample_data=X, keep_example=False)
    assert mlem.load_meta(path).model_type.methods["predict"].args[0].example is None
    assert "Paris" not in (tmp_path / "strict.mlem").read_text()
