"""The array fast path gives the same predictions as the DataFrame path, or stays out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from mlem_lib.data.base import infer_data_type
from mlem_lib.serve.fastpath import ArrayPath


def _payloads(frame: pd.DataFrame) -> list:
    rows = frame.to_dict("records")
    return [{"values": rows}, rows,
            {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}]


def _both_ways(model, frame, method="predict_proba"):
    arg_type = infer_data_type(frame).batch_free()
    path = ArrayPath.for_model(model, arg_type)
    assert path is not None
    for payload in _payloads(frame):
        arr = path.from_json(payload)
        assert isinstance(arr, np.ndarray)
        slow = arg_type.from_json(payload)
        assert isinstance(slow, pd.DataFrame)
        np.testing.assert_array_equal(getattr(model, method)(arr), getattr(model, method)(slow))


@pytest.mark.parametrize("rows", [1, 7, 150])
def test_same_predictions_as_the_dataframe_path(iris, iris_lr, iris_rf, rows):
    X, y = iris
    frame = X.head(rows)
    _both_ways(iris_lr, frame)
    _both_ways(iris_rf, frame)
    _both_ways(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y),
               frame)


def test_integer_and_float32_columns_keep_their_dtype(iris):
    X, y = iris
    ints = (X * 10).round().astype("int64")
    _both_ways(LogisticRegression(max_iter=500).fit(ints, y), ints.head(5))
    f32 = X.astype("float32")
    _both_ways(RandomForestClassifier(n_estimators=5, random_state=0).fit(f32, y), f32.head(5))
    assert ArrayPath.for_model(LogisticRegression().fit(f32, y),
                               infer_data_type(f32).batch_free()).dtype == np.float32


def test_models_that_need_column_names_keep_getting_dataframes(iris):
    X, y = iris
    arg_type = infer_data_type(X).batch_free()
    by_name = make_pipeline(
        ColumnTransformer([("petals", StandardScaler(), ["petal_length", "petal_width"])]),
        LogisticRegression(max_iter=500)).fit(X, y)
    function = make_pipeline(FunctionTransformer(lambda df: df[["sepal_length"]]),
                             LogisticRegression(max_iter=500)).fit(X, y)
    pandas_out = make_pipeline(StandardScaler().set_output(transform="pandas"),
                               LogisticRegression(max_iter=500)).fit(X, y)
    reordered = LogisticRegression(max_iter=500).fit(X[list(reversed(X.columns))], y)
    for model in (by_name, function, pandas_out, reordered):
        assert ArrayPath.for_model(model, arg_type) is None, model


def test_anything_but_plain_numeric_rows_goes_the_regular_way(iris, iris_lr):
    X, _ = iris
    path = ArrayPath.for_model(iris_lr, infer_data_type(X).batch_free())
    row = X.head(1).to_dict("records")[0]
    bad = [
        {"values": [{k: v for k, v in row.items() if k != "petal_width"}]},  # missing column
        {"values": [{**row, "extra": 1.0}]},  # unknown column
        {"values": [{**row, "petal_width": "0.2"}]},  # a string
        {"values": [{**row, "petal_width": None}]},  # a null
        {"values": [{**row, "petal_width": True}]},  # a bool
        {"values": []},  # no rows
        {"columns": list(reversed(X.columns)), "data": [[1, 2, 3, 4]]},  # other order
        {"columns": list(X.columns), "data": [[1, 2, 3]]},  # short row
        {"sepal_length": [1.0]},  # column lists
        [[1.0, 2.0, 3.0, 4.0]],  # bare lists
    ]
    for payload in bad:
        assert path.from_json(payload) is None, payload


def test_non_tables_and_unknown_models_have_no_fast_path(iris):
    X, y = iris
    class Custom:
        def predict(self, df):
            return df["sepal_length"] > 5
    assert ArrayPath.for_model(Custom(), infer_data_type(X).batch_free()) is None
    assert ArrayPath.for_model(LogisticRegression(max_iter=500).fit(X.to_numpy(), y),
                               infer_data_type(X.to_numpy()).batch_free()) is None
    text = pd.DataFrame({"city": ["a", "b"], "x": [1.0, 2.0]})
    assert ArrayPath.for_model(LogisticRegression(), infer_data_type(text).batch_free()) is None


def _parquet(frame: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_parquet_bodies_give_the_array_the_dataframe_path_gives(iris, dtype):
    X, y = iris
    frame = (X * 10).round().astype(dtype) if dtype == "int64" else X.astype(dtype)
    model = LogisticRegression(max_iter=500).fit(frame, y)
    arg_type = infer_data_type(frame).batch_free()
    path = ArrayPath.for_model(model, arg_type)
    body = _parquet(frame.head(20))
    fast = path.from_parquet(body)
    slow = path.from_frame(arg_type.decode(body, "application/x-parquet"))
    assert isinstance(fast, np.ndarray) and fast.dtype == slow.dtype
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(model.predict_proba(fast), model.predict_proba(slow))


def test_parquet_bodies_that_differ_from_the_schema_go_the_regular_way(iris, iris_lr):
    X, _ = iris
    path = ArrayPath.for_model(iris_lr, infer_data_type(X).batch_free())
    head = X.head(3)
    with_null = head.copy()
    with_null.iloc[1, 2] = None
    bad = [
        _parquet(head[list(reversed(head.columns))]),  # other order
        _parquet(head.drop(columns="petal_width")),  # a missing column
        _parquet(with_null),  # a null: the regular path names the column
        _parquet(head.astype({"petal_width": "float32"})),  # another type
        _parquet(head.astype({"petal_width": "int64"})),  # integers in a float column
        _parquet(head.head(0)),  # no rows
        b"PAR1 not really",
    ]
    head.index = [5, 6, 7]
    bad.append(head.to_parquet())  # a non-default index comes as a column
    for body in bad:
        assert path.from_parquet(body) is None
