"""Data schemas: inference, validation, JSON round trips and error messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlem_lib.data.base import infer_data_type, parse_data_type
from mlem_lib.errors import SchemaError


def roundtrip(obj):
    """Infer a schema, write it as a dict, read it back, and JSON-roundtrip the value."""
    dt = infer_data_type(obj)
    again = parse_data_type(dt.model_dump(mode="json"))
    assert again == dt
    return again, again.from_json(again.to_json(obj))


def test_dataframe_schema_records_columns_dtypes_and_roundtrips(iris):
    X, _ = iris
    df = X.assign(kind="a", n=np.arange(len(X)))
    dt, back = roundtrip(df)
    assert dt.columns == [*X.columns, "kind", "n"]
    assert dt.dtypes[:4] == ["float64"] * 4
    assert dt.dtypes[-1] == "int64"
    pd.testing.assert_frame_equal(back.reset_index(drop=True), df.reset_index(drop=True),
                                  check_dtype=False)


def test_dataframe_named_index_becomes_index_cols():
    df = pd.DataFrame({"id": [1, 2], "x": [0.5, 1.5]}).set_index("id")
    dt, back = roundtrip(df)
    assert dt.index_cols == ["id"]
    assert list(back.index) == [1, 2]


def test_dataframe_missing_and_unknown_column_named(iris):
    dt = infer_data_type(iris[0])
    with pytest.raises(SchemaError, match="missing column 'petal_width'") as info:
        dt.validate_value(iris[0].drop(columns=["petal_width"]))
    assert info.value.field == "petal_width"
    with pytest.raises(SchemaError, match="unknown column 'extra'"):
        dt.validate_value(iris[0].assign(extra=1.0))


def test_dataframe_wrong_dtype_named(iris):
    dt = infer_data_type(iris[0])
    with pytest.raises(SchemaError, match="'sepal_width': expected dtype float64") as info:
        dt.from_json({"values": [{"sepal_length": 1.0, "sepal_width": "wide",
                                  "petal_length": 1.0, "petal_width": 1.0}]})
    assert info.value.field == "sepal_width"


def test_dataframe_accepts_any_column_order_and_int_for_float(iris):
    dt = infer_data_type(iris[0])
    rows = [{"petal_width": 1, "petal_length": 2, "sepal_width": 3, "sepal_length": 4}]
    df = dt.from_json({"values": rows})
    assert list(df.columns) == dt.columns
    assert df["sepal_length"].dtype == np.float64
    split = dt.from_json({"columns": list(reversed(dt.columns)), "data": [[1, 2, 3, 4]]})
    assert split.iloc[0]["sepal_length"] == 4.0


def test_ndarray_batch_axis_free_and_shape_errors():
    dt = infer_data_type(np.zeros((10, 4))).batch_free()
    assert dt.shape == [None, 4]
    assert dt.from_json([[1, 2, 3, 4]]).shape == (1, 4)
    with pytest.raises(SchemaError, match=r"axis 1 must be 4"):
        dt.from_json([[1, 2, 3]])
    with pytest.raises(SchemaError, match="dimensions"):
        dt.from_json([1, 2, 3, 4])
    with pytest.raises(SchemaError, match="different lengths"):
        dt.from_json([[1, 2, 3, 4], [1, 2]])


def test_ndarray_float_to_int_only_when_whole():
    dt = infer_data_type(np.array([1, 2, 3]))
    assert dt.from_json([1.0, 2.0, 3.0]).dtype == np.int64
    with pytest.raises(SchemaError, match="expected dtype int64"):
        dt.from_json([1.5, 2.0, 3.0])


def test_series_roundtrip():
    s = pd.Series([1.0, 2.0], name="x")
    dt, back = roundtrip(s)
    assert dt.describe() == "series[float64]"
    assert back.tolist() == [1.0, 2.0]


def test_list_length_and_item_type():
    dt = infer_data_type([1, 2, 3])
    assert dt.describe() == "list[int, 3]"
    with pytest.raises(SchemaError, match="expected length 3"):
        dt.validate_value([1, 2])
    with pytest.raises(SchemaError, match=r"\[1\].*expected int, got str"):
        dt.validate_value([1, "x", 3])
    assert dt.batch_free().validate_value([5]) == [5]


def test_dict_keys_named():
    dt = infer_data_type({"a": 1, "b": [1.0, 2.0]})
    _, back = roundtrip({"a": 1, "b": [1.0, 2.0]})
    assert back == {"a": 1, "b": [1.0, 2.0]}
    with pytest.raises(SchemaError, match="missing key 'b'") as info:
        dt.from_json({"a": 1})
    assert info.value.field == "b"
    with pytest.raises(SchemaError, match="unknown key 'c'"):
        dt.from_json({"a": 1, "b": [1.0, 2.0], "c": 3})
    with pytest.raises(SchemaError, match=r"'a': expected int, got str"):
        dt.from_json({"a": "1", "b": [1.0, 2.0]})


@pytest.mark.parametrize("value,expected", [(1, "int"), (1.5, "float"), ("s", "str"),
                                            (True, "bool"), (None, "NoneType")])
def test_scalars(value, expected):
    dt, back = roundtrip(value)
    assert dt.describe() == expected
    assert back == value


def test_scalar_bool_is_not_an_int():
    with pytest.raises(SchemaError):
        infer_data_type(1).validate_value(True)


def test_examples_satisfy_their_own_schema(iris):
    for obj in [iris[0], np.zeros((3, 2)), [1.0, 2.0], {"k": "v"}, 3, iris[0]["sepal_length"]]:
        dt = infer_data_type(obj).batch_free()
        dt.validate_value(dt.example())


def test_unknown_type_keeps_its_fields():
    dt = parse_data_type({"type": "torch_tensor", "shape": [None, 3], "dtype": "float32"})
    assert dt.model_dump()["shape"] == [None, 3]


# --- data types come from the plugin seam ------------------------------------------------

class Point:
    """A value no builtin data type describes."""

    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y


def _point_type():
    from mlem_lib.data.base import DataType

    class PointType(DataType):
        type: str = "test_point"

        @classmethod
        def infer(cls, obj):
            return cls() if isinstance(obj, Point) else None

        def validate_value(self, obj, field=None):
            return obj

        def from_json(self, payload, field=None):
            return Point(*payload)

        def to_json(self, obj):
            return [obj.x, obj.y]

    return PointType


def test_a_registered_data_type_is_parsed_and_inferred():
    from mlem_lib import plugins
    from mlem_lib.data.base import UnknownDataType
    from mlem_lib.errors import UnsupportedObjectError

    point_type = _point_type()
    with pytest.raises(UnsupportedObjectError, match="Point"):
        infer_data_type(Point(1, 2))
    # defining a subclass registers nothing: only the seam does
    assert type(parse_data_type({"type": "test_point"})) is UnknownDataType
    plugins.register("data", "test_point", point_type, claims=[__name__.split(".")[0]])
    try:
        assert type(infer_data_type(Point(1, 2))) is point_type
        assert infer_data_type([Point(1, 2), Point(3, 4)]).describe() == "list[test_point, 2]"
        assert type(parse_data_type({"type": "test_point"})) is point_type
    finally:
        plugins.unregister("data", "test_point")
    assert type(parse_data_type({"type": "test_point"})) is UnknownDataType


def test_a_data_plugin_that_cannot_be_imported_is_a_plugin_error():
    from mlem_lib import plugins
    from mlem_lib.errors import PluginError

    plugins.register("data", "test_broken", "no_such_module_here:BrokenType")
    try:
        with pytest.raises(PluginError, match="test_broken"):
            parse_data_type({"type": "test_broken"})
    finally:
        plugins.unregister("data", "test_broken")


def test_numpy_scalars_are_numbers_not_python_floats():
    assert infer_data_type(np.float64(1.5)).type == "number"
    assert infer_data_type(1.5).type == "primitive"
    assert infer_data_type(np.bool_(True)).describe() == "bool"


# --- a data type owns its formats --------------------------------------------------------

def _same(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    elif isinstance(a, pd.Series):
        assert a.tolist() == b.tolist() and a.dtype == b.dtype
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert type(a) is type(b)


@pytest.mark.parametrize("kind", ["dataframe", "matrix", "vector", "series", "floats"])
def test_every_media_type_a_type_lists_roundtrips(kind, iris):
    value = {"dataframe": iris[0].head(5), "matrix": iris[0].head(5).to_numpy(),
             "vector": np.arange(5), "series": pd.Series([1.5, 2.5], name="x"),
             "floats": [1.5, 2.0]}[kind]
    dt = infer_data_type(value).batch_free()
    assert dt.media_types() == ("application/json", "text/csv", "application/x-parquet",
                                "application/x-npy")
    for media_type in dt.media_types():
        _same(value, dt.decode(dt.encode(value, media_type), media_type))


def test_types_without_a_table_form_speak_json_only():
    from mlem_lib.errors import HTTPProblem

    for value in ({"a": 1}, (1, "x"), 3, np.float32(1)):  # (lists of texts: CSV too)
        dt = infer_data_type(value)
        assert dt.media_types() == ("application/json",)
        assert dt.decode(dt.encode(value, "application/json"), "application/json") == value
        with pytest.raises(HTTPProblem) as refused:
            dt.encode(value, "text/csv")
        assert refused.value.status == 406 and refused.value.body["field"] == "Accept"
        with pytest.raises(HTTPProblem) as refused:
            dt.decode(b"1,2", "text/csv")
        assert refused.value.status == 415


def test_csv_header_is_sniffed_or_declared(iris):
    dt = infer_data_type(iris[0])
    frame = dt.decode(b"5.1,3.5,1.4,0.2\n", "text/csv")
    assert frame.iloc[0]["petal_width"] == 0.2
    named = dt.decode(b"petal_width,petal_length,sepal_width,sepal_length\n1,2,3,4\n",
                      "text/csv")
    assert named.iloc[0]["petal_width"] == 1.0
    # a written index column (pandas' default) is dropped
    assert dt.decode(iris[0].head(2).to_csv().encode(), "text/csv").shape == (2, 4)
    values = infer_data_type(np.zeros((2, 2))).batch_free()
    assert values.decode(b"1,2\n3,4\n", "text/csv").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert values.decode(b"10,20\n3,4\n", "text/csv", {"header": "present"}).tolist() == [
        [3.0, 4.0]]
    with pytest.raises(SchemaError, match="CSV rows have 2 values, expected 4"):
        dt.decode(b"1,2\n", "text/csv", {"header": "absent"})


def test_tables_keep_their_index_columns_in_csv_and_parquet():
    frame = pd.DataFrame({"id": [7, 8], "x": [0.5, 1.5]}).set_index("id")
    dt = infer_data_type(frame)
    assert dt.encode(frame, "text/csv").decode().splitlines() == ["id,x", "7,0.5", "8,1.5"]
    back = dt.decode(dt.encode(frame, "application/x-parquet"), "application/x-parquet")
    assert list(back.index) == [7, 8] and back.index.name == "id"


def test_batches_know_their_rows_emptiness_and_how_to_join(iris):
    frame = infer_data_type(iris[0])
    assert frame.rows(iris[0]) == 150 and frame.is_empty(iris[0].head(0))
    assert not frame.is_empty(iris[0].head(1))
    assert list(frame.concat([]).columns) == list(iris[0].columns)
    joined = frame.concat([iris[0].head(2), iris[0].tail(1)])
    assert list(joined.index) == [0, 1, 2]
    vector = infer_data_type(np.arange(3)).batch_free()
    assert vector.concat([]).dtype == np.int64
    assert vector.is_empty(np.arange(0)) and not vector.is_empty(np.int64(3).reshape(()))
    floats = infer_data_type([1.0])
    assert floats.concat([[1.0], [2.0, 3.0]]) == [1.0, 2.0, 3.0]
    assert not floats.is_empty([])  # lists are passed on as they are
    assert frame.from_chunk(iris[0].to_numpy()[:3]).shape == (3, 4)
    assert frame.from_chunk(iris[0].head(2).to_dict("records")).shape == (2, 4)
    with pytest.raises(SchemaError, match="expected 4 columns"):
        frame.from_chunk(np.zeros((2, 3)))
