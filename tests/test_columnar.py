"""Columnar bodies without a Python object per row: the split layout's matrix read as one
array, Parquet read straight with pyarrow. Same answers and errors as the regular path."""

from __future__ import annotations

import io
import json
import tracemalloc

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from starlette.testclient import TestClient

from mlem_lib.data import media
from mlem_lib.data.base import infer_data_type
from mlem_lib.runner import LoadedModel
from mlem_lib.serve.app import create_app
from mlem_lib.serve.settings import ServerSettings

ROWS = 4000  # a split body of these rows is well above media.MATRIX_MIN_BYTES


def _frame(iris, rows: int = ROWS) -> pd.DataFrame:
    X = iris[0]
    return pd.concat([X] * (rows // len(X) + 1), ignore_index=True).head(rows)


def test_matrix_is_read_as_orjson_reads_it():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=(300, 3)) * 10.0 ** rng.integers(-300, 300, (300, 1)),
                             [[0.1, -0.0, 1.7976931348623157e308], [5e-324, 2.5, 1e22]]])
    body = orjson.dumps({"columns": ["a", "b", "c"], "data": values.tolist()})
    rest, arr = media.loads_json_matrix(body, "float64")
    assert media.split_columns(rest) == ["a", "b", "c"]
    expected = np.array(orjson.loads(body)["data"])
    assert arr.tobytes() == expected.tobytes()  # bit for bit, -0.0 included
    ints = [[-(2 ** 63), 2 ** 63 - 1], [0, -5]]
    _, arr = media.loads_json_matrix(orjson.dumps({"data": ints}), "int64")
    assert arr.dtype == np.int64 and arr.tolist() == ints
    pretty = json.dumps({"data": {"columns": ["a"], "data": [[1], [2.5]]}}, indent=2).encode()
    rest, arr = media.loads_json_matrix(pretty, "float64")
    assert media.split_columns(rest["data"]) == ["a"] and arr.tolist() == [[1.0], [2.5]]


@pytest.mark.parametrize("body", [
    b'[[1, 2], [3]]', b'[[1, 2], [3, 4, 5]]', b'[[1, 2], []]', b'[[], [1, 2]]',
    b'[[1, 2], [], [3, 4]]', b'[[1, null]]', b'[[1, "2"]]', b'[[1, true]]', b'[[1, NaN]]',
    b'[[1, "NaN"]]', b'[[1, 1e999]]', b'[[1, 2], [3, 4]', b'[[[1, 2]], [[3, 4]]]',
    b'[[[1], 2]]', b'[[1, 2]] x', b'{"a": [[1]], "b": [[2]]}', b'[[1,,2]]', b'[[1, 2,]]',
    b'{"columns": "\\u0000mlem-matrix", "data": [[1]]}', b'[[1, -]]', b'[[1, 2e]]'])
def test_anything_but_a_matrix_of_numbers_is_left_to_the_regular_parser(body):
    assert media.loads_json_matrix(body, "float64") is None


def test_integer_matrix_takes_integers_only():
    assert media.loads_json_matrix(b'[[1, 2.0]]', "int64") is None
    assert media.loads_json_matrix(b'[[1, 9223372036854775808]]', "int64") is None
    assert media.loads_json_matrix(b'[[1, 2]]', "int64")[1].tolist() == [[1, 2]]


def test_split_layout_decodes_without_an_object_per_row(iris):
    """Regression: 50k rows of the split layout made 250k Python objects (lists and floats,
    about 10 MB), and the garbage collector walked them again and again."""
    frame = _frame(iris, 50_000)
    arg_type = infer_data_type(iris[0]).batch_free()
    body = orjson.dumps({"columns": list(frame.columns), "data": frame.to_numpy().tolist()})
    arg_type.decode(body, media.JSON)  # imports and first calls out of the way
    tracemalloc.start()
    try:
        decoded = arg_type.decode(body, media.JSON)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    pd.testing.assert_frame_equal(decoded, frame)
    assert peak < 4 * len(body), f"peak {peak} bytes for a body of {len(body)}"


@pytest.fixture(scope="module")
def models(iris):
    X, y = iris
    ints = (X * 10).round().astype("int64")
    by_name = make_pipeline(
        ColumnTransformer([("petals", StandardScaler(), ["petal_length", "petal_width"]),
                           ("sepals", "passthrough", ["sepal_length", "sepal_width"])]),
        LogisticRegression(max_iter=500)).fit(X, y)
    f32 = X.astype("float32")
    return {
        "array fast path": (LogisticRegression(max_iter=500).fit(X, y), X),
        "columns by name": (by_name, X),
        "float32": (RandomForestClassifier(n_estimators=5, random_state=0).fit(f32, y), f32),
        "int64": (LogisticRegression(max_iter=500).fit(ints, y), ints),
    }


def _bodies(frame: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    reordered = frame[list(frame.columns)[::-1]]
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    npy = io.BytesIO()
    np.save(npy, frame.to_numpy())
    split = {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}
    return {
        "rows": (orjson.dumps({"data": {"values": frame.to_dict("records")}}), media.JSON),
        "split": (orjson.dumps({"data": split}), media.JSON),
        "split, columns reordered": (orjson.dumps({"data": {
            "columns": list(reordered.columns), "data": reordered.to_numpy().tolist()}}),
            media.JSON),
        "split, pretty-printed": (json.dumps({"data": split}, indent=1).encode(), media.JSON),
        "pandas to_json(orient='split')": (
            b'{"data": ' + frame.to_json(orient="split", double_precision=15).encode() + b"}",
            media.JSON),
        "parquet": (parquet.getvalue(), media.PARQUET),
        "csv": (frame.to_csv(index=False).encode(), media.CSV),
        "npy": (npy.getvalue(), media.NPY),
    }


@pytest.mark.parametrize("name", ["array fast path", "columns by name", "float32", "int64"])
@pytest.mark.parametrize("rows", [3, ROWS])
def test_every_body_format_gives_the_models_own_answers(models, name, rows):
    model, X = models[name]
    frame = pd.concat([X] * (rows // len(X) + 1), ignore_index=True).head(rows)
    frame.index = frame.index + 7  # a written index must not become a column
    client = TestClient(create_app(LoadedModel.from_object(model, X), ServerSettings()))
    expected_labels = model.predict(frame).tolist()
    expected_proba = model.predict_proba(frame)
    for body_name, (body, ctype) in _bodies(frame).items():
        r = client.post("/predict", content=body, headers={"Content-Type": ctype})
        assert r.status_code == 200, (body_name, r.text)
        assert r.json() == expected_labels, body_name
        r = client.post("/predict_proba", content=body,
                        headers={"Content-Type": ctype, "Accept": media.NPY})
        assert r.status_code == 200, (body_name, r.text)
        assert np.load(io.BytesIO(r.content)).tobytes() == expected_proba.tobytes(), body_name
    bare = orjson.dumps({"columns": list(frame.columns), "data": frame.to_numpy().tolist()})
    r = client.post("/invocations", content=bare, headers={"Content-Type": media.JSON})
    assert r.status_code == 200 and r.json() == expected_labels


@pytest.mark.parametrize("rows", [3, ROWS])
def test_bad_split_bodies_get_the_same_400_at_any_size(models, rows):
    model, X = models["array fast path"]
    frame = pd.concat([X] * (rows // len(X) + 1), ignore_index=True).head(rows)
    client = TestClient(create_app(LoadedModel.from_object(model, X), ServerSettings()))
    data = frame.to_numpy().tolist()
    columns = list(frame.columns)
    short = [row[:3] for row in data]
    cases = {
        "petal_width": {"columns": columns[:3], "data": short},  # a missing column
        "extra": {"columns": [*columns, "extra"], "data": [[*row, 1.0] for row in data]},
        "row 1": {"columns": columns, "data": [data[0], data[1][:3], *data[2:]]},
    }
    for field, split in cases.items():
        r = client.post("/predict", content=orjson.dumps({"data": split}),
                        headers={"Content-Type": media.JSON})
        assert r.status_code == 400, (field, r.text)
        assert r.json()["field"] == field, r.json()
    r = client.post("/predict", content=orjson.dumps({"data": {"columns": columns,
                                                               "data": data}, "x": 1}),
                    headers={"Content-Type": media.JSON})
    assert r.status_code == 400 and r.json()["field"] == "x"
    r = client.post("/predict", content=orjson.dumps({"data": {"columns": columns,
                    "data": [*data[:-1], [*data[-1][:3], "NaN"]]}}),
                    headers={"Content-Type": media.JSON})
    assert r.status_code == 400 and r.json()["got"] == "NaN or infinity", r.text
