"""Honest numbers at the boundary: no silent wrap, no bools or complex numbers taken for
floats, duplicate columns refused (issue 12, items 13 and 14). The same checks hold in
the API (data types) and over HTTP (create_app through Starlette's TestClient)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from mlem_lib.data.base import infer_data_type
from mlem_lib.errors import SchemaError
from mlem_lib.runner import LoadedModel
from mlem_lib.serve.app import create_app
from mlem_lib.serve.settings import ServerSettings

SAMPLE = pd.DataFrame({"count": np.array([1, 2], dtype="int64"),
                       "weight": np.array([0.5, 1.5], dtype="float32")})


def total(df: pd.DataFrame) -> list[float]:
    return [float(c) + float(w) for c, w in zip(df["count"], df["weight"], strict=True)]


@pytest.fixture(scope="module", params=["function", "estimator"])
def table_app(request, tmp_path_factory) -> TestClient:
    """A table model served for real: a plain function, and a scikit-learn estimator that
    the server calls with an array (serve/fastpath.py), which must check the same."""
    from sklearn.linear_model import LinearRegression

    import mlem_lib.api as mlem

    path = str(tmp_path_factory.mktemp("honest") / "total")
    model = total if request.param == "function" else LinearRegression().fit(SAMPLE, [1, 2])
    mlem.save(model, path, sample_data=SAMPLE)
    return TestClient(create_app(LoadedModel.load(path), ServerSettings()))


@pytest.mark.parametrize("value,column", [(1e30, "count"), (-1e19, "count"),
                                          (1e39, "weight")])
def test_out_of_range_value_is_refused_by_the_data_type(value, column):
    row = {"count": 1, "weight": 1.0, column: value}
    with pytest.raises(SchemaError, match=f"'{column}'.*out of the range") as err:
        infer_data_type(SAMPLE).from_json({"values": [row]})
    assert err.value.field == column


def test_int_overflow_is_refused_when_validating_a_frame():
    df = pd.DataFrame({"count": [1e30], "weight": np.array([1.0], dtype="float32")})
    with pytest.raises(SchemaError, match="out of the range of int64"):
        infer_data_type(SAMPLE).validate_value(df)


def test_booleans_are_not_numbers():
    with pytest.raises(SchemaError):
        infer_data_type(SAMPLE).from_json({"values": [{"count": 1, "weight": True}]})
    with pytest.raises(SchemaError, match="true/false"):
        infer_data_type(np.zeros((1, 2))).from_json([[True, 1.0]])
    with pytest.raises(SchemaError):
        infer_data_type(np.float64(1.0)).from_json(True)


def test_complex_array_is_not_cast_to_its_real_part():
    with pytest.raises(SchemaError, match="complex"):
        infer_data_type(np.zeros((1, 2))).validate_value(np.array([[1 + 2j, 1.0]]))


def test_duplicate_split_columns_are_refused():
    with pytest.raises(SchemaError, match="duplicate column 'count'"):
        infer_data_type(SAMPLE).from_json({"columns": ["count", "count"], "data": [[1, 2]]})


def _csv(rows: list[dict]) -> bytes:
    return pd.DataFrame(rows).to_csv(index=False).encode()


def _parquet(rows: list[dict]) -> bytes:
    buf = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buf)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_int64_overflow_is_a_400_naming_the_column_in_every_format(table_app, fmt):
    rows = [{"count": 1e30, "weight": 1.0}]
    if fmt == "json":
        r = table_app.post("/predict", json={"data": {"values": rows}})
    else:
        body, ctype = ((_csv(rows), "text/csv") if fmt == "csv"
                       else (_parquet(rows), "application/x-parquet"))
        r = table_app.post("/predict", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 400, r.text
    assert "count" in r.text
    assert "9223372036854775808" not in r.text


@pytest.mark.parametrize("body", [
    b'{"data": {"values": [{"count": 99999999999999999999999, "weight": 1.0}]}}',
    b'{"data": {"columns": ["count", "weight"], "data": [[99999999999999999999999, 1.0]]}}',
    b'{"data": {"values": [{"count": 1e30, "weight": 1.0}]}}',
    b'{"data": {"values": [{"count": 2.5, "weight": 1.0}]}}',
])
def test_a_big_or_fractional_json_number_in_an_int_column_is_a_400(table_app, body):
    r = table_app.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "count"
    assert "-9223372036854775808" not in r.text


def test_a_big_csv_integer_is_named_with_its_value(table_app):
    body = b"count,weight\n99999999999999999999999,1.0\n"
    r = table_app.post("/predict", content=body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "count"
    assert "99999999999999999999999" in r.json()["error"] and "None" not in r.json()["error"]


def test_float32_overflow_and_bools_are_400s(table_app):
    r = table_app.post("/predict", json={"data": {"values": [{"count": 1, "weight": 1e39}]}})
    assert r.status_code == 400 and "weight" in r.text
    r = table_app.post("/predict", json={"data": {"values": [{"count": 1, "weight": True}]}})
    assert r.status_code == 400 and "weight" in r.text


def test_duplicate_split_columns_are_a_clear_400(table_app):
    r = table_app.post("/predict", json={"data": {"columns": ["count", "count"],
                                                  "data": [[1, 2]]}})
    assert r.status_code == 400
    assert "duplicate column 'count'" in r.text and "AttributeError" not in r.text


def test_complex_npy_body_is_a_400(saved_kinds):
    client = TestClient(create_app(LoadedModel.load(saved_kinds["ndarray"]), ServerSettings()))
    buf = io.BytesIO()
    np.save(buf, np.array([[1 + 1j, 2, 3, 4]]))
    r = client.post("/predict", content=buf.getvalue(),
                    headers={"Content-Type": "application/x-npy"})
    assert r.status_code == 400 and "complex" in r.text


# --- item 12: non-finite values --------------------------------------------------------

def log_probs(x: np.ndarray) -> np.ndarray:
    """Like predict_log_proba of a sure classifier: -inf and NaN in the answer."""
    out = np.zeros((len(x), 3))
    out[:, 1] = -np.inf
    out[:, 2] = np.nan
    return out


def nan_tolerant(x: np.ndarray) -> np.ndarray:
    """A model that takes missing values (like xgboost): NaN counts as 0."""
    return np.nan_to_num(x).sum(axis=1)


@pytest.fixture(scope="module")
def nonfinite_apps(tmp_path_factory) -> dict[str, TestClient]:
    import mlem_lib.api as mlem

    root = tmp_path_factory.mktemp("nonfinite")
    apps = {}
    for name, fn in {"log_probs": log_probs, "tolerant": nan_tolerant}.items():
        mlem.save(fn, str(root / name), sample_data=np.ones((2, 4)))
        apps[name] = TestClient(create_app(LoadedModel.load(str(root / name)),
                                           ServerSettings()))
    return apps


def test_nonfinite_results_are_json_tokens_never_null(nonfinite_apps):
    r = nonfinite_apps["log_probs"].post("/predict", json={"data": [[1.0, 2.0, 3.0, 4.0]]})
    assert r.status_code == 200
    assert r.json() == [[0.0, "-Infinity", "NaN"]]
    assert b"null" not in r.content
    csv = nonfinite_apps["log_probs"].post("/predict", json={"data": [[1.0, 2.0, 3.0, 4.0]]},
                                           headers={"Accept": "text/csv"})
    assert "-inf" in csv.text


def test_nonfinite_results_round_trip_through_http_client(nonfinite_apps):
    from mlem_lib.client import HTTPClient

    with HTTPClient("http://testserver", client=nonfinite_apps["log_probs"]) as client:
        got = np.asarray(client.predict(np.ones((2, 4))))
    assert got.dtype.kind == "f"
    np.testing.assert_array_equal(got, log_probs(np.ones((2, 4))))


def _bodies(x: np.ndarray) -> dict[str, tuple[bytes, str]]:
    from mlem_lib.data.media import dumps_json

    npy, parquet = io.BytesIO(), io.BytesIO()
    np.save(npy, x)
    pd.DataFrame(x, columns=[str(i) for i in range(x.shape[1])]).to_parquet(parquet)
    csv = "\n".join(",".join(repr(float(v)) for v in row) for row in x).encode()
    return {"json": (b'{"data": ' + dumps_json(x) + b"}", "application/json"),
            "csv": (csv, "text/csv"), "npy": (npy.getvalue(), "application/x-npy"),
            "parquet": (parquet.getvalue(), "application/x-parquet")}


@pytest.mark.parametrize("fmt", ["json", "csv", "npy", "parquet"])
def test_nan_input_gets_the_same_400_in_every_format(saved_kinds, fmt):
    client = TestClient(create_app(LoadedModel.load(saved_kinds["ndarray"]), ServerSettings()))
    x = np.array([[5.1, np.nan, 1.4, 0.2]])
    body, ctype = _bodies(x)[fmt]
    r = client.post("/predict", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 400, (fmt, r.status_code, r.text)
    assert r.json()["field"] == "data" and "NaN" in r.json()["error"]


@pytest.mark.parametrize("fmt", ["json", "csv", "npy", "parquet"])
def test_nan_reaches_a_model_that_takes_it_in_every_format(nonfinite_apps, fmt):
    x = np.array([[1.0, np.nan, 2.0, -np.inf]])
    body, ctype = _bodies(np.nan_to_num(x, posinf=np.inf, neginf=0.0, nan=np.nan))[fmt]
    r = nonfinite_apps["tolerant"].post("/predict", content=body,
                                        headers={"Content-Type": ctype})
    assert r.status_code == 200, (fmt, r.text)
    assert r.json() == [3.0]
