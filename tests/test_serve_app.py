"""The generated FastAPI app (mlem_lib.serve.app / codecs), exercised in-process.

Real HTTP with uvicorn is in test_serve_http.py; here the app runs under starlette's
TestClient so every input format and error case stays quick to check.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from mlem_lib.runner import LoadedModel
from mlem_lib.serve.app import create_app
from mlem_lib.serve.settings import ServerSettings
from tests.conftest import FIXTURES

HTTP_FIXTURES = FIXTURES / "mlem" / "http"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def lr_app(saved_lr):
    return TestClient(create_app(LoadedModel.load(saved_lr), ServerSettings()))


@pytest.fixture(scope="module")
def kinds(saved_kinds):
    return {k: TestClient(create_app(LoadedModel.load(p), ServerSettings()))
            for k, p in saved_kinds.items()}


def rows(iris, n=3):
    return iris[0].head(n).to_dict("records")


def test_predict_dataframe_rows_like_mlem(lr_app, iris, iris_lr):
    r = lr_app.post("/predict", json={"data": {"values": rows(iris)}})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == iris_lr.predict(iris[0].head(3)).tolist()


def test_predict_proba_split_layout(lr_app, iris, iris_lr):
    X = iris[0].head(4)
    body = {"data": {"columns": list(X.columns)[::-1],
                     "data": X[list(X.columns)[::-1]].to_numpy().tolist()}}
    r = lr_app.post("/predict_proba", json=body)
    assert r.status_code == 200
    np.testing.assert_allclose(r.json(), iris_lr.predict_proba(X))


def test_recorded_mlem_request_bodies_work(lr_app, iris_lr, iris):
    for name in ("sklearn_lr.client_predict", "sklearn_lr.ok_reordered_columns",
                 "sklearn_lr.ok_int_values", "sklearn_lr.ok_raw_values_rows"):
        rec = json.loads((HTTP_FIXTURES / f"{name}.json").read_text())
        r = lr_app.post("/predict", content=rec["request"]["body"],
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 200, (name, r.text)
        frame = pd.DataFrame(rec["request"]["json"]["data"]["values"])[COLUMNS]
        assert r.json() == iris_lr.predict(frame.astype(float)).tolist(), name


@pytest.mark.parametrize("name", [
    "sklearn_lr.error_missing_column", "sklearn_lr.error_extra_column",
    "sklearn_lr.error_wrong_value_type", "sklearn_lr.error_malformed_json",
    "sklearn_lr.error_empty_body", "sklearn_lr.error_missing_data_key",
    "sklearn_lr.error_data_is_list_of_lists", "sklearn_lr.error_values_not_list",
    "sklearn_lr.error_empty_values", "sklearn_lr.error_null_value"])
def test_recorded_mlem_bad_requests_give_4xx_naming_the_field(lr_app, name):
    rec = json.loads((HTTP_FIXTURES / f"{name}.json").read_text())
    r = lr_app.post("/predict", content=rec["request"]["body"].encode(),
                    headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
    body = r.json()
    assert body["error"], name
    assert body.get("field"), (name, body)


def test_error_bodies_name_field_and_expectation(lr_app, iris):
    bad = rows(iris, 2)
    del bad[1]["petal_width"]
    body = lr_app.post("/predict", json={"data": {"values": bad}}).json()
    assert body["field"] == "petal_width" and "petal_width" in body["expected"]
    bad = rows(iris, 2)
    bad[0]["sepal_length"] = "abc"
    r = lr_app.post("/predict", json={"data": {"values": bad}})
    assert r.status_code == 400
    assert r.json()["field"] == "sepal_length" and r.json()["expected"] == "float64"
    r = lr_app.post("/predict", json={"data": {"values": rows(iris)}, "extra": 1})
    assert r.status_code == 400 and r.json()["field"] == "extra"


def test_interface_follows_mlem_layout(lr_app):
    ours = lr_app.get("/interface.json").json()
    theirs = json.loads((HTTP_FIXTURES / "sklearn_lr.interface.json").read_text())
    for method in ("predict", "predict_proba"):
        mine, ref = ours["methods"][method], theirs["methods"][method]
        assert set(mine) == set(ref)
        assert mine["args"][0]["data_type"] == ref["args"][0]["data_type"]
        assert mine["args"][0]["serializer"] == ref["args"][0]["serializer"]
        assert [a["name"] for a in mine["args"]] == ["data"]
        assert mine["returns"]["data_type"]["type"] == ref["returns"]["data_type"]["type"]
        assert mine["returns"]["data_type"]["shape"] == ref["returns"]["data_type"]["shape"]


def test_openapi_docs_have_typed_schemas(lr_app):
    assert '<a href="/docs">' in lr_app.get("/").text  # the model page links the docs
    assert lr_app.get("/docs").status_code == 200
    spec = lr_app.get("/openapi.json").json()
    post = spec["paths"]["/predict"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    rows_schema = schema["properties"]["data"]["anyOf"][0]
    assert rows_schema["properties"]["values"]["items"]["required"] == COLUMNS
    assert set(post["requestBody"]["content"]) >= {"application/x-parquet",
                                                  "application/x-npy", "text/csv"}
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert "/invocations" in spec["paths"] and "/ping" in spec["paths"]


def test_binary_inputs_and_outputs(lr_app, iris, iris_lr):
    X = iris[0].head(50)
    buf = io.BytesIO()
    X.to_parquet(buf)
    r = lr_app.post("/predict_proba", content=buf.getvalue(),
                    headers={"Content-Type": "application/x-parquet",
                             "Accept": "application/x-npy"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-npy"
    np.testing.assert_allclose(np.load(io.BytesIO(r.content)), iris_lr.predict_proba(X))
    npy = io.BytesIO()
    np.save(npy, X.to_numpy())
    r = lr_app.post("/predict", content=npy.getvalue(),
                    headers={"Content-Type": "application/x-npy",
                             "Accept": "application/x-parquet"})
    assert r.status_code == 200
    assert pd.read_parquet(io.BytesIO(r.content))["0"].tolist() == iris_lr.predict(X).tolist()
    r = lr_app.post("/predict", json={"data": {"values": rows(iris)}},
                    headers={"Accept": "text/csv"})
    assert r.text.split() == [str(v) for v in iris_lr.predict(iris[0].head(3))]
    r = lr_app.post("/predict", json={"data": {"values": rows(iris)}},
                    headers={"Accept": "image/png"})
    assert r.status_code == 406 and r.json()["field"] == "Accept"
    r = lr_app.post("/predict", content=b"\x00garbage",
                    headers={"Content-Type": "application/x-parquet"})
    assert r.status_code == 400
    r = lr_app.post("/predict", content=b"<a/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415 and r.json()["field"] == "Content-Type"


def test_sagemaker_invocations(lr_app, iris, iris_lr):
    X = iris[0].iloc[[0, 70, 140]]
    csv_rows = X.to_csv(header=False, index=False)
    r = lr_app.post("/invocations", content=csv_rows, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json() == iris_lr.predict(X).tolist()
    # SageMaker hands this header to the caller as CustomAttributes: the served model
    served = lr_app.app.state.loaded.meta.model_hash
    assert r.headers["X-Amzn-SageMaker-Custom-Attributes"] == f"model_hash={served}"
    r = lr_app.post("/invocations", content=X.to_csv(index=False),
                    headers={"Content-Type": "text/csv", "Accept": "text/csv",
                             "X-Amzn-SageMaker-Custom-Attributes": "method=predict_proba"})
    assert r.headers["content-type"].startswith("text/csv")
    got = np.loadtxt(io.StringIO(r.text), delimiter=",")
    np.testing.assert_allclose(got, iris_lr.predict_proba(X))
    r = lr_app.post("/invocations", json={"values": X.to_dict("records")},
                    headers={"X-Mlem-Method": "predict_proba"})
    assert np.asarray(r.json()).shape == (3, 3)
    r = lr_app.post("/invocations", json={"data": {"values": X.to_dict("records")}})
    assert r.json() == iris_lr.predict(X).tolist()
    r = lr_app.post("/invocations", content="1,2\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and "4" in r.json()["expected"]
    r = lr_app.post("/invocations", json={"values": X.to_dict("records")},
                    headers={"X-Mlem-Method": "nope"})
    assert r.status_code == 400 and r.json()["field"] == "method"
    assert lr_app.get("/ping").status_code == 200


def test_sagemaker_method_from_env(saved_lr, iris, iris_lr, monkeypatch):
    monkeypatch.setenv("MLEM_SAGEMAKER_METHOD", "predict_proba")
    client = TestClient(create_app(LoadedModel.load(saved_lr)))
    r = client.post("/invocations", json={"values": rows(iris, 2)})
    np.testing.assert_allclose(r.json(), iris_lr.predict_proba(iris[0].head(2)))


def test_auth_token(saved_lr, iris):
    client = TestClient(create_app(LoadedModel.load(saved_lr),
                                   ServerSettings(auth_token="s3cret")))
    body = {"data": {"values": rows(iris, 1)}}
    r = client.post("/predict", json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.post("/predict", json=body,
                       headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/invocations", json=body).status_code == 401
    assert client.post("/predict", json=body,
                       headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/ping").status_code == 200


def test_body_limit(saved_lr, iris):
    client = TestClient(create_app(LoadedModel.load(saved_lr),
                                   ServerSettings(max_body_mb=0.001)))
    r = client.post("/predict", json={"data": {"values": rows(iris, 50)}})
    assert r.status_code == 413 and r.json()["field"] == "body"
    assert client.post("/predict", json={"data": {"values": rows(iris, 1)}}).status_code == 200


def test_every_data_kind(kinds, iris):
    X = iris[0].head(3).to_numpy()
    r = kinds["ndarray"].post("/predict", json={"data": X.tolist()})
    assert r.status_code == 200 and len(r.json()) == 3
    r = kinds["ndarray"].post("/predict", json={"data": X[:, :3].tolist()})
    assert r.status_code == 400 and "shape" in r.json()["expected"]
    r = kinds["ndarray"].post("/predict", json={"data": [[1, 2, 3, "x"]]})
    assert r.status_code == 400
    assert kinds["list"].post("/predict", json={"data": [1.0, 2.5]}).json() == [2.0, 5.0]
    r = kinds["list"].post("/predict", json={"data": ["a"]})
    assert r.status_code == 400 and r.json()["field"] == "[0]"
    assert kinds["dict"].post("/predict", json={"data": {"a": 1, "b": "q"}}).json() == "q:2"
    r = kinds["dict"].post("/predict", json={"data": {"a": 1}})
    assert r.status_code == 400 and r.json()["field"] == "b"
    r = kinds["dict"].post("/predict", json={"data": {"a": 1, "b": "q", "c": 2}})
    assert r.status_code == 400 and r.json()["field"] == "c"
    assert kinds["series"].post("/predict", json={"data": [1.0, 2.0, 4.0]}).json() == 7.0
    assert kinds["scalar"].post("/predict", json={"data": 4}).json() == 16
    r = kinds["scalar"].post("/predict", json={"data": "four"})
    assert r.status_code == 400 and r.json()["expected"] == "int"
    spec = kinds["dict"].get("/openapi.json").json()
    data_schema = spec["paths"]["/predict"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["data"]
    assert data_schema["required"] == ["a", "b"]


def test_model_error_is_500_and_server_keeps_serving(kinds):
    boom = kinds["boom"]
    r = boom.post("/predict", json={"data": [-1.0]})
    assert r.status_code == 500
    assert r.json() == {"error": "ValueError: negative input"}
    assert boom.post("/predict", json={"data": [1.0]}).json() == [1.0]


def test_unknown_method_and_wrong_verb(lr_app):
    assert lr_app.post("/nonexistent", json={"data": 1}).status_code == 404
    assert lr_app.get("/predict").status_code == 405


def test_each_argument_type_decides_its_media_types(kinds):
    r = kinds["series"].post("/predict", content=b"1\n2\n4\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json() == 7.0
    r = kinds["list"].post("/predict", content=b"1.5\n2\n", headers={"Content-Type": "text/csv",
                                                                     "Accept": "text/csv"})
    assert r.status_code == 200 and r.text == "3.0\n4.0\n"
    npy = io.BytesIO()
    np.save(npy, np.array([1.0, 2.5]))
    r = kinds["list"].post("/predict", content=npy.getvalue(),
                           headers={"Content-Type": "application/x-npy"})
    assert r.json() == [2.0, 5.0]
    r = kinds["dict"].post("/predict", content=b"a,b\n1,q\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 415 and r.json() == {
        "error": "unsupported Content-Type 'text/csv'; send one of application/json",
        "field": "Content-Type", "expected": "application/json", "got": "text/csv"}
    r = kinds["dict"].post("/predict", json={"data": {"a": 1, "b": "q"}},
                           headers={"Accept": "text/csv"})
    assert r.status_code == 406 and r.json()["expected"] == "application/json"
    r = kinds["dict"].post("/predict", json={"data": {"a": 1, "b": "q"}},
                           headers={"Accept": "text/*, application/json;q=0.5"})
    assert r.status_code == 200 and r.json() == "q:2"
    spec = kinds["dict"].get("/openapi.json").json()["paths"]["/predict"]["post"]
    assert list(spec["requestBody"]["content"]) == ["application/json"]
