"""pandas DataFrames and Series."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlem_lib.data import media
from mlem_lib.data.base import DataType
from mlem_lib.data.numpy import coerce_dtype, parse_nonfinite_tokens
from mlem_lib.errors import SchemaError

_STRINGS = ("object", "str", "string")


def _json_type(dtype: str) -> dict[str, Any]:
    if dtype in _STRINGS or dtype == "category":
        return {"type": "string"}
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        return {}
    return {"type": {"f": "number", "i": "integer", "u": "integer", "b": "boolean"}.get(
        kind, "string")}


def _example_value(dtype: str) -> Any:
    if dtype in _STRINGS or dtype == "category":
        return ""
    try:
        return np.zeros((), dtype=dtype)[()].item()
    except TypeError:
        return None


def _coerce_column(col: pd.Series, expected: str, name: str) -> pd.Series:
    actual = str(col.dtype)
    if actual == expected:
        return col
    if expected in _STRINGS and (actual in _STRINGS or col.dtype.kind in "OUS"):
        return col
    return coerce_dtype(col, expected, name)


class DataFrameType(DataType):
    """A table: column names and dtypes in order; ``index_cols`` are columns that were the index."""

    type: str = "dataframe"
    columns: list[str]
    dtypes: list[str]
    index_cols: list[str] = []

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """A DataFrame: column names and dtypes; a named index becomes ``index_cols``.

        Example:
            >>> DataFrameType.infer(pd.DataFrame({"a": [1.0]})).describe()
            'dataframe[a: float64]'
        """
        if not isinstance(obj, pd.DataFrame):
            return None
        index_cols: list[str] = []
        if any(n is not None for n in obj.index.names):
            index_cols = [str(n) for n in obj.index.names]
            obj = obj.reset_index()
        return cls(columns=[str(c) for c in obj.columns],
                   dtypes=[str(d) for d in obj.dtypes], index_cols=index_cols)

    def _frame(self, df: pd.DataFrame, field: str | None) -> pd.DataFrame:
        present = [str(c) for c in df.columns]
        if len(set(present)) != len(present):
            dup = next(c for i, c in enumerate(present) if c in present[:i])
            raise SchemaError(f"duplicate column '{dup}' (expected columns: "
                              f"{', '.join(self.columns)})", field=dup,
                              expected="each column once", got=f"column {dup!r} twice")
        missing = [c for c in self.columns if c not in present]
        if missing:
            raise SchemaError(
                f"missing column '{missing[0]}' (expected columns: {', '.join(self.columns)})",
                field=missing[0], expected=f"column {missing[0]!r}", got="missing")
        unknown = [c for c in present if c not in self.columns]
        if unknown:
            raise SchemaError(
                f"unknown column '{unknown[0]}' (expected columns: {', '.join(self.columns)})",
                field=unknown[0], expected=f"one of {self.columns}", got=f"column {unknown[0]!r}")
        if present != self.columns:
            df = df.rename(columns=str)[self.columns]
        casts = {}
        for name, dtype in zip(self.columns, self.dtypes, strict=True):
            col = df[name]
            new = _coerce_column(col, dtype, name)
            if new is not col:
                casts[name] = new
        if casts:
            df = df.assign(**casts)
        if self.index_cols:
            df = df.set_index(self.index_cols)
        return df

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        if isinstance(obj, pd.DataFrame):
            if self.index_cols and list(obj.index.names) == self.index_cols:
                obj = obj.reset_index()
            return self._frame(obj, field)
        return self.from_json(obj, field)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        if isinstance(payload, dict) and "values" in payload and len(payload) == 1:
            payload = payload["values"]
        if isinstance(payload, dict) and "columns" in payload and "data" in payload:
            return self._from_split(payload)
        if isinstance(payload, dict):
            return self._from_columns(payload)
        if isinstance(payload, list):
            return self._from_records(payload)
        raise SchemaError(
            "expected a table: {\"values\": [row objects]}, a list of row objects or "
            f"{{\"columns\": [...], \"data\": [[...]]}}, got {type(payload).__name__}",
            field=field, expected="dataframe", got=type(payload).__name__)

    def _from_records(self, rows: list[Any]) -> pd.DataFrame:
        width = len(self.columns)
        keyset = set(self.columns)
        for i, row in enumerate(rows):
            if type(row) is dict and row.keys() == keyset:  # fast path: a C-level compare
                continue
            if not isinstance(row, dict):
                raise SchemaError(f"row {i}: expected an object with keys "
                                  f"{', '.join(self.columns)}, got {type(row).__name__}",
                                  field=f"row {i}", expected="object",
                                  got=type(row).__name__)
            if len(row) != width or any(c not in row for c in self.columns):
                missing = [c for c in self.columns if c not in row]
                if missing:
                    raise SchemaError(
                        f"row {i}: missing column '{missing[0]}' "
                        f"(expected columns: {', '.join(self.columns)})",
                        field=missing[0], expected=f"column {missing[0]!r}", got="missing")
                extra = next(k for k in row if k not in self.columns)
                raise SchemaError(
                    f"row {i}: unknown column '{extra}' "
                    f"(expected columns: {', '.join(self.columns)})",
                    field=str(extra), expected=f"one of {self.columns}",
                    got=f"column {extra!r}")
        data = {c: [r[c] for r in rows] for c in self.columns}
        return self._build(data)

    def _from_columns(self, columns: dict[str, Any]) -> pd.DataFrame:
        for name, values in columns.items():
            if not isinstance(values, list):
                raise SchemaError(f"column '{name}': expected a list of values",
                                  field=str(name), expected="list",
                                  got=type(values).__name__)
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise SchemaError("columns have different lengths", field=None,
                              expected="equal lengths", got=str(sorted(lengths)))
        return self._frame(pd.DataFrame(columns), None)

    def _from_split(self, payload: dict[str, Any]) -> pd.DataFrame:
        cols, data = payload["columns"], payload["data"]
        if not isinstance(cols, list) or not isinstance(data, list):
            raise SchemaError("split layout needs 'columns' and 'data' lists", field=None,
                              expected="lists", got="other")
        width = len(cols)
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != width:
                raise SchemaError(f"row {i}: expected {width} values (columns: "
                                  f"{', '.join(map(str, cols))})", field=f"row {i}",
                                  expected=f"{width} values",
                                  got=str(len(row)) if isinstance(row, list) else "non-list")
        return self._frame(pd.DataFrame(data, columns=cols), None)

    def _build(self, data: dict[str, list[Any]]) -> pd.DataFrame:
        out = {}
        for name, dtype in zip(self.columns, self.dtypes, strict=True):
            values = data[name]
            if dtype in _STRINGS or dtype == "category":
                out[name] = pd.Series(values, dtype=object if dtype == "object" else dtype)
                continue
            try:
                arr = np.asarray(values)
            except ValueError as exc:
                raise SchemaError(f"column '{name}': expected {dtype} values", field=name,
                                  expected=dtype, got="mixed values") from exc
            if arr.dtype.kind in "OUS" and dtype.startswith("float"):
                parsed = parse_nonfinite_tokens(np.asarray(values, dtype=object))  # "NaN" in JSON
                if parsed is not None:
                    arr = parsed
            if arr.dtype.kind in "OUS":
                bad = next((v for v in values if isinstance(v, str | dict | list)), None)
                raise SchemaError(f"column '{name}': expected dtype {dtype}, got "
                                  f"{type(bad).__name__} value {bad!r:.30}", field=name,
                                  expected=dtype, got=type(bad).__name__)
            out[name] = coerce_dtype(arr, dtype, name)
        df = pd.DataFrame(out, copy=False)
        if self.index_cols:
            df = df.set_index(self.index_cols)
        return df

    def to_json(self, obj: Any) -> Any:
        df = obj.reset_index() if self.index_cols else obj
        return {"values": df.to_dict("records")}

    def example(self) -> Any:
        return self._build({c: [_example_value(d)] for c, d in zip(self.columns, self.dtypes,
                                                                  strict=True)})

    def describe(self) -> str:
        cols = ", ".join(f"{c}: {d}" for c, d in zip(self.columns, self.dtypes, strict=True))
        return f"dataframe[{cols}]"

    def json_schema(self) -> dict[str, Any]:
        row = {"type": "object",
               "properties": {c: _json_type(d) for c, d in zip(self.columns, self.dtypes,
                                                               strict=True)},
               "required": list(self.columns)}
        return {"type": "object", "properties": {"values": {"type": "array", "items": row}},
                "required": ["values"]}

    def input_json_schema(self) -> dict[str, Any]:
        """Row objects (MLEM's layout) or pandas' split layout."""
        split = {"type": "object", "title": "split layout (pandas orient='split')",
                 "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                                "data": {"type": "array", "items": {"type": "array"}}},
                 "required": ["columns", "data"]}
        return {"anyOf": [dict(self.json_schema(), title="row objects"), split]}

    def requirement_modules(self) -> list[str]:
        return ["pandas"]

    # --- formats: JSON rows or split layout, CSV, Parquet and .npy -------------------
    def media_types(self) -> tuple[str, ...]:
        return media.TABULAR

    def binary_media_type(self, value: Any = None) -> str | None:
        if isinstance(value, np.ndarray):  # rows of values: they meet the columns by position
            return media.NPY if value.ndim == 2 and value.dtype.kind in "biuf" else None
        return media.PARQUET

    def decode(self, body: bytes, media_type: str,
               params: Mapping[str, str] | None = None) -> Any:
        """Tables from JSON, CSV (the header row is optional: without one the columns are
        taken in the schema's order, as SageMaker sends them), Parquet, or an ``.npy``
        array of ``(rows, columns)`` values.

        Example:
            >>> t = DataFrameType(columns=["a", "b"], dtypes=["int64", "float64"])
            >>> t.decode(b"1,2\\n3,4\\n", "text/csv").to_dict("list")
            {'a': [1, 3], 'b': [2.0, 4.0]}
        """
        if media_type == media.CSV:
            return self.validate_value(self._read_csv(body, media.csv_header_param(params)))
        if media_type == media.PARQUET:
            return self.validate_value(media.read_parquet(body))
        if media_type == media.NPY:
            return self.validate_value(self._from_array(media.read_npy(body), "an .npy body"))
        return super().decode(body, media_type, params)

    def _read_csv(self, body: bytes, header: bool | None) -> pd.DataFrame:
        text = media.csv_text(body)
        tokens = media.csv_first_row(text)
        if header is None:
            header = bool(set(tokens) & set(self.columns))
        if header:
            return media.read_csv(text, header=True)
        if len(tokens) != len(self.columns):
            raise SchemaError(
                f"CSV rows have {len(tokens)} values, expected {len(self.columns)} "
                f"(columns in order: {', '.join(self.columns)})", field="body",
                expected=f"{len(self.columns)} values per row", got=f"{len(tokens)} values")
        return media.read_csv(text, header=False, names=self.columns)

    def _from_array(self, arr: Any, what: str) -> pd.DataFrame:
        """A 2-D array as a table whose columns are the schema's, by position."""
        width = len(self.columns)
        if arr.ndim != 2 or arr.shape[1] != width:
            raise SchemaError(
                f"{what} for a table needs shape (n, {width}): expected {width} columns "
                f"({', '.join(self.columns)}), got shape {tuple(arr.shape)}", field=None,
                expected=f"{width} columns", got=f"shape {tuple(arr.shape)}")
        return pd.DataFrame(arr, columns=self.columns)

    def encode(self, value: Any, media_type: str) -> bytes:
        if media_type in (media.CSV, media.PARQUET):
            return media.write_table(value, media_type, self.index_cols)
        return super().encode(value, media_type)

    # --- batches: rows of the table --------------------------------------------------
    def is_empty(self, value: Any) -> bool:
        return len(value) == 0

    def from_chunk(self, chunk: Any) -> Any:
        """A checked table from a chunk: ``.npy`` rows meet the columns by position.

        Example:
            >>> t = DataFrameType(columns=["a", "b"], dtypes=["float64", "float64"])
            >>> t.from_chunk(np.zeros((2, 2))).columns.tolist()
            ['a', 'b']
        """
        if getattr(chunk, "ndim", None) == 2 and not hasattr(chunk, "iloc"):
            chunk = self._from_array(chunk, "an array")
        return self.validate_value(chunk)

    def concat(self, parts: list[Any]) -> Any:
        """The tables one after another (renumbered rows; an empty table for none)."""
        if not parts:
            return self.example().iloc[:0]
        return pd.concat(parts, ignore_index=True)


class SeriesType(DataType):
    """A pandas Series of one dtype."""

    type: str = "series"
    name: str | None = None
    dtype: str = "object"

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """A Series: its name and dtype.

        Example:
            >>> SeriesType.infer(pd.Series([1, 2], name="n")).describe()
            'series[int64]'
        """
        if not isinstance(obj, pd.Series):
            return None
        return cls(name=None if obj.name is None else str(obj.name), dtype=str(obj.dtype))

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        if isinstance(obj, pd.Series):
            return _coerce_column(obj, self.dtype, field or self.name or "series")
        return self.from_json(obj, field)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        if isinstance(payload, dict) and "values" in payload:
            payload = payload["values"]
        if not isinstance(payload, list):
            raise SchemaError(f"expected a list of {self.dtype} values, got "
                              f"{type(payload).__name__}", field=field or self.name,
                              expected=f"list of {self.dtype}", got=type(payload).__name__)
        return _coerce_column(pd.Series(payload, name=self.name), self.dtype,
                              field or self.name or "series")

    def to_json(self, obj: Any) -> Any:
        return obj.tolist()

    def example(self) -> Any:
        return pd.Series([_example_value(self.dtype)], name=self.name, dtype=self.dtype)

    def describe(self) -> str:
        return f"series[{self.dtype}]"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": _json_type(self.dtype)}

    def requirement_modules(self) -> list[str]:
        return ["pandas"]

    # --- formats: JSON list, CSV / Parquet column, .npy vector ------------------------
    def media_types(self) -> tuple[str, ...]:
        return media.TABULAR

    def binary_media_type(self, value: Any = None) -> str | None:
        try:
            numeric = np.dtype(self.dtype).kind in "biuf"
        except TypeError:
            return None
        return media.NPY if numeric else None

    def decode(self, body: bytes, media_type: str,
               params: Mapping[str, str] | None = None) -> Any:
        """A Series from a JSON list, one CSV or Parquet column, or a 1-D ``.npy`` array.

        Example:
            >>> SeriesType(name="x", dtype="float64").decode(b"x\\n1\\n2\\n", "text/csv").tolist()
            [1.0, 2.0]
        """
        if media_type == media.CSV:
            header = media.csv_header_param(params)
            if header is None:
                text = media.csv_text(body)
                tokens = media.csv_first_row(text)
                header = tokens == [self.name] or (
                    self.binary_media_type() is not None
                    and not all(media.is_number(t) for t in tokens))
            return self._column(media.read_csv_values(body, header), "CSV rows")
        if media_type == media.PARQUET:
            return self._column(media.read_parquet(body).to_numpy(), "a Parquet table")
        if media_type == media.NPY:
            return self._column(media.read_npy(body), "an .npy body")
        return super().decode(body, media_type, params)

    def _column(self, arr: Any, what: str) -> Any:
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise SchemaError(f"{what} for a series needs one column of values, got shape "
                              f"{tuple(arr.shape)}", field=self.name, expected="one column",
                              got=str(tuple(arr.shape)))
        return self.validate_value(pd.Series(arr, name=self.name))

    # --- batches ---------------------------------------------------------------------
    def is_empty(self, value: Any) -> bool:
        return len(value) == 0

    def concat(self, parts: list[Any]) -> Any:
        if not parts:
            return pd.Series([], name=self.name, dtype=self.dtype)
        return pd.concat(parts, ignore_index=True)
