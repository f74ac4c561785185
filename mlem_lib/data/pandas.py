"""pandas DataFrames and Series, with every dtype pandas has.

Each column keeps the dtype string pandas printed at save; :mod:`mlem_lib.data.columns`
knows what each one means in JSON, CSV, Parquet and memory (date-times with and without
a time zone, categories, the nullable dtypes, strings). Categorical columns also record
their categories, and a table may say that its date-times travel in JSON as epoch
milliseconds (``date_format: epoch_ms``) instead of ISO 8601 strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pydantic import field_validator

from mlem_lib.data import media
from mlem_lib.data.base import DataType
from mlem_lib.data.columns import DATE_FORMATS, Column, categories_of, frame_records, json_values
from mlem_lib.errors import SchemaError

#: The missing-value markers pandas reads by default, for the numeric columns of a CSV
#: (text columns take only an empty cell as missing, so a city called "NA" stays one).
try:
    from pandas._libs.parsers import STR_NA_VALUES as _PANDAS_NA
except ImportError:  # pragma: no cover - a pandas without the private constant
    _PANDAS_NA = {"", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "<NA>", "#N/A"}
_NUMERIC_NA = sorted(_PANDAS_NA)
#: fields MLEM 0.4 does not know; left out of what MLEM's own client reads
_EXTENSIONS = ("categories", "ordered", "date_format")


def _check_date_format(value: str | None) -> str | None:
    if value is not None and value not in DATE_FORMATS:
        raise ValueError(f"date_format must be one of {', '.join(DATE_FORMATS)}, got {value!r}")
    return value


def _csv_int(cell: str) -> Any:
    """A CSV cell of a nullable int column, read exactly (not through float64, which
    would round values beyond 2**53); anything else is left for the schema to refuse.
    A missing cell is ``pd.NA`` (``None`` would let pandas turn the column into floats)."""
    text = cell.strip()
    if not text:
        return pd.NA
    if _CSV_INT.fullmatch(text):
        return int(text.split(".")[0])
    return cell


def _csv_bool(cell: str) -> Any:
    """A CSV cell of a nullable boolean column (``True``/``False`` as pandas writes them)."""
    text = cell.strip()
    if not text:
        return pd.NA
    return {"true": True, "false": False}.get(text.lower(), cell)


def _csv_float(cell: str) -> Any:
    text = cell.strip()
    if not text:
        return pd.NA
    try:
        return float(text)
    except ValueError:
        return cell


_CSV_INT = re.compile(r"[+-]?\d+(\.0*)?")


def _nullable_parser(dtype: str) -> Any:
    if dtype == "boolean":
        return _csv_bool
    return _csv_float if dtype.startswith("Float") else _csv_int


def _csv_options(specs: list[Column]) -> dict[str, Any]:
    """``pandas.read_csv`` options that read each column as its saved dtype wants: text
    columns as text, nullable ints and booleans cell by cell (an empty cell is missing)."""
    text = {c.name: c.csv_dtype() for c in specs if c.csv_dtype() is not None}
    parsers = {c.name: _nullable_parser(c.dtype) for c in specs if c.kind == "nullable"}
    if not text and not parsers:
        return {}
    na = {c.name: ([""] if c.name in text else _NUMERIC_NA) for c in specs
          if c.name not in parsers}
    options: dict[str, Any] = {"keep_default_na": False, "na_values": na}
    if text:
        options["dtype"] = text
    if parsers:
        options["converters"] = parsers
    return options


class DataFrameType(DataType):
    """A table: column names and dtypes in order; ``index_cols`` are columns that were the index.

    ``categories`` holds the categories of each categorical column, ``ordered`` the
    categorical columns whose categories are ordered, and ``date_format`` how date-times
    travel in JSON (``iso``, the default, or ``epoch_ms``).
    """

    type: str = "dataframe"
    columns: list[str]
    dtypes: list[str]
    index_cols: list[str] = []
    categories: dict[str, list[Any]] | None = None
    ordered: list[str] | None = None
    date_format: str | None = None

    @field_validator("date_format")
    @classmethod
    def _known_date_format(cls, value: str | None) -> str | None:
        return _check_date_format(value)

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """A DataFrame: column names and dtypes; a named index becomes ``index_cols``.

        Example:
            >>> DataFrameType.infer(pd.DataFrame({"a": [1.0]})).describe()
            'dataframe[a: float64]'
            >>> DataFrameType.infer(pd.DataFrame({"c": pd.Categorical(["x"], ["x", "y"])})
            ...                     ).categories
            {'c': ['x', 'y']}
        """
        if not isinstance(obj, pd.DataFrame):
            return None
        index_cols: list[str] = []
        if any(n is not None for n in obj.index.names):
            index_cols = [str(n) for n in obj.index.names]
            obj = obj.reset_index()
        categories: dict[str, list[Any]] = {}
        ordered: list[str] = []
        for i, dtype in enumerate(obj.dtypes):
            if isinstance(dtype, pd.CategoricalDtype):
                cats, is_ordered = categories_of(obj.iloc[:, i])
                if cats is not None:
                    categories[str(obj.columns[i])] = cats
                if is_ordered:
                    ordered.append(str(obj.columns[i]))
        return cls(columns=[str(c) for c in obj.columns],
                   dtypes=[str(d) for d in obj.dtypes], index_cols=index_cols,
                   categories=categories or None, ordered=ordered or None)

    def specs(self) -> list[Column]:
        """One :class:`~mlem_lib.data.columns.Column` per column, in order."""
        cats = self.categories or {}
        ordered = set(self.ordered or ())
        return [Column(c, d, tuple(cats[c]) if c in cats else None, c in ordered,
                       self.date_format)
                for c, d in zip(self.columns, self.dtypes, strict=True)]

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
        for spec in self.specs():
            col = df[spec.name]
            new = spec.coerce(col)
            if new is not col:
                casts[spec.name] = new
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
        present = [str(c) for c in columns]
        if set(present) == set(self.columns) and len(present) == len(self.columns):
            return self._build({str(k): v for k, v in columns.items()})
        return self._frame(pd.DataFrame(columns), None)  # names the missing/unknown column

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
        names = [str(c) for c in cols]
        if len(set(names)) == len(names) and set(names) == set(self.columns):
            return self._build({c: [row[j] for row in data] for j, c in enumerate(names)})
        return self._frame(pd.DataFrame(data, columns=cols), None)

    def json_matrix_dtype(self) -> str | None:
        """float64 for tables of float columns, int64 for tables of integer columns (the
        split layout's rows are read straight into an array; other tables: None)."""
        try:
            kinds = {np.dtype(d).kind for d in self.dtypes}
        except TypeError:  # category, string, nullable Int64...
            return None
        if self.categories or not kinds:
            return None
        return "float64" if kinds == {"f"} else "int64" if kinds <= {"i", "u"} else None

    def from_matrix(self, payload: Any, values: Any) -> Any:
        """The split layout, its rows read as one array: a checked table (None for another
        layout, or columns that are not exactly the schema's).

        Example:
            >>> t = DataFrameType(columns=["a", "b"], dtypes=["float64", "float32"])
            >>> rest, arr = media.loads_json_matrix(
            ...     b'{"columns": ["b", "a"], "data": [[1, 2], [3, 4]]}', "float64")
            >>> t.from_matrix(rest, arr).dtypes.tolist()
            [dtype('float64'), dtype('float32')]
        """
        columns = media.split_columns(payload)
        if columns is None or len(columns) != values.shape[1] or \
                sorted(columns) != sorted(self.columns):
            return None
        try:
            return self._frame(pd.DataFrame(values, columns=columns, copy=False), None)
        except SchemaError:  # e.g. beyond an int32 column: the regular path words it
            return None

    def _build(self, data: dict[str, list[Any]]) -> pd.DataFrame:
        """A checked table from JSON values, one list per column."""
        out = {spec.name: spec.from_values(data[spec.name]) for spec in self.specs()}
        df = pd.DataFrame(out, copy=False)
        if self.index_cols:
            df = df.set_index(self.index_cols)
        return df

    def to_json(self, obj: Any) -> Any:
        df = obj.reset_index() if self.index_cols else obj
        return {"values": frame_records(df, self.date_format)}

    def example(self) -> Any:
        return self._build({c.name: [c.example_value()] for c in self.specs()})

    def describe(self) -> str:
        cols = ", ".join(f"{c}: {d}" for c, d in zip(self.columns, self.dtypes, strict=True))
        return f"dataframe[{cols}]"

    def json_schema(self) -> dict[str, Any]:
        row = {"type": "object",
               "properties": {c.name: c.json_schema() for c in self.specs()},
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

    def mlem_dump(self) -> dict[str, Any]:
        """MLEM 0.4's layout: without the fields its (strict) client does not know."""
        return self.model_dump(mode="json", exclude=set(_EXTENSIONS))

    def requirement_modules(self) -> list[str]:
        return ["pandas"]

    # --- formats: JSON rows or split layout, CSV, Parquet and .npy -------------------
    def media_types(self) -> tuple[str, ...]:
        return media.tabular()

    def binary_media_type(self, value: Any = None) -> str | None:
        if isinstance(value, np.ndarray):  # rows of values: they meet the columns by position
            return media.NPY if value.ndim == 2 and value.dtype.kind in "biuf" else None
        return media.PARQUET if media.PARQUET in self.media_types() else None

    def input_columns(self) -> list[str] | None:
        return list(self.columns)

    def csv_read_options(self) -> dict[str, Any]:
        """Read text, category and date-time columns as text, and parse them with the
        schema (so ``123`` in a string column stays ``"123"``).

        Example:
            >>> t = DataFrameType(columns=["city", "x"], dtypes=["str", "float64"])
            >>> t.csv_read_options()["dtype"]
            {'city': 'str'}
        """
        return _csv_options(self.specs())

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
        options = self.csv_read_options()
        if header:
            return media.read_csv(text, header=True, options=options)
        if len(tokens) != len(self.columns):
            raise SchemaError(
                f"CSV rows have {len(tokens)} values, expected {len(self.columns)} "
                f"(columns in order: {', '.join(self.columns)})", field="body",
                expected=f"{len(self.columns)} values per row", got=f"{len(tokens)} values")
        return media.read_csv(text, header=False, names=self.columns, options=options)

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
    """A pandas Series of one dtype (``categories`` and ``date_format`` as for tables)."""

    type: str = "series"
    name: str | None = None
    dtype: str = "object"
    categories: list[Any] | None = None
    ordered: bool | None = None
    date_format: str | None = None

    @field_validator("date_format")
    @classmethod
    def _known_date_format(cls, value: str | None) -> str | None:
        return _check_date_format(value)

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """A Series: its name and dtype.

        Example:
            >>> SeriesType.infer(pd.Series([1, 2], name="n")).describe()
            'series[int64]'
        """
        if not isinstance(obj, pd.Series):
            return None
        categories, ordered = (categories_of(obj) if isinstance(obj.dtype, pd.CategoricalDtype)
                               else (None, False))
        return cls(name=None if obj.name is None else str(obj.name), dtype=str(obj.dtype),
                   categories=categories, ordered=ordered or None)

    def spec(self, field: str | None = None) -> Column:
        """The :class:`~mlem_lib.data.columns.Column` of the values."""
        return Column(field or self.name or "series", self.dtype,
                      tuple(self.categories) if self.categories is not None else None,
                      bool(self.ordered), self.date_format)

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        if isinstance(obj, pd.Series):
            return self.spec(field).coerce(obj)
        if isinstance(obj, np.ndarray) and obj.ndim == 1:
            return self.spec(field).coerce(pd.Series(obj, name=self.name))
        return self.from_json(obj, field)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        if isinstance(payload, dict) and "values" in payload:
            payload = payload["values"]
        if not isinstance(payload, list):
            raise SchemaError(f"expected a list of {self.dtype} values, got "
                              f"{type(payload).__name__}", field=field or self.name,
                              expected=f"list of {self.dtype}", got=type(payload).__name__)
        values = self.spec(field).from_values(payload)
        if isinstance(values, pd.Series):
            return values.rename(self.name)
        return pd.Series(values, name=self.name)

    def to_json(self, obj: Any) -> Any:
        values = json_values(obj, self.date_format) if isinstance(obj, pd.Series) else None
        return values if values is not None else obj.tolist()

    def example(self) -> Any:
        return self.from_json([self.spec().example_value()])

    def describe(self) -> str:
        return f"series[{self.dtype}]"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.spec().json_schema()}

    def mlem_dump(self) -> dict[str, Any]:
        """MLEM 0.4's layout: without the fields its (strict) client does not know."""
        return self.model_dump(mode="json", exclude=set(_EXTENSIONS))

    def requirement_modules(self) -> list[str]:
        return ["pandas"]

    # --- formats: JSON list, CSV / Parquet column, .npy vector ------------------------
    def media_types(self) -> tuple[str, ...]:
        return media.tabular()

    def binary_media_type(self, value: Any = None) -> str | None:
        try:
            numeric = np.dtype(self.dtype).kind in "biuf"
        except TypeError:
            numeric = False
        if numeric:
            return media.NPY
        return media.PARQUET if media.PARQUET in self.media_types() else None

    def csv_read_options(self) -> dict[str, Any]:
        return _csv_options([self.spec()])

    def decode(self, body: bytes, media_type: str,
               params: Mapping[str, str] | None = None) -> Any:
        """A Series from a JSON list, one CSV or Parquet column, or a 1-D ``.npy`` array.

        A CSV body has a header row unless its first row has the wrong kind of values for
        a header (numbers, for a numeric series) or ``header=absent`` says so.

        Example:
            >>> SeriesType(name="x", dtype="float64").decode(b"x\\n1\\n2\\n", "text/csv").tolist()
            [1.0, 2.0]
            >>> SeriesType(name="zip", dtype="str").decode(b"zip\\n007\\n", "text/csv").tolist()
            ['007']
        """
        if media_type == media.CSV:
            return self.from_chunk(self._read_csv(body, media.csv_header_param(params)))
        if media_type == media.PARQUET:
            return self.from_chunk(media.read_parquet(body))
        if media_type == media.NPY:
            return self._column(media.read_npy(body), "an .npy body")
        return super().decode(body, media_type, params)

    def _read_csv(self, body: bytes, header: bool | None) -> pd.DataFrame:
        text = media.csv_text(body)
        tokens = media.csv_first_row(text)
        spec = self.spec()
        if header is None:  # pandas writes a header; numbers in the first row are no header
            header = spec.kind not in ("number", "nullable") or tokens == [self.name] or \
                not all(media.is_number(t) for t in tokens if t)
        names = tokens if header else [str(i) for i in range(len(tokens))]
        options = _csv_options([Column(n, spec.dtype) for n in names])
        if header:
            return media.read_csv(text, header=True, options=options)
        return media.read_csv(text, header=False, names=names, options=options)

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

    def from_chunk(self, chunk: Any) -> Any:
        """A checked Series from a chunk: a table's column named like the series, or its
        only column (``apply --column`` picks one of many).

        Example:
            >>> SeriesType(name="text", dtype="str").from_chunk(
            ...     pd.DataFrame({"text": ["a b"]})).tolist()
            ['a b']
        """
        if isinstance(chunk, pd.DataFrame):
            return self.validate_value(one_column(chunk, self.name).rename(self.name))
        if isinstance(chunk, list) and chunk and isinstance(chunk[0], dict):
            return self.from_chunk(pd.DataFrame.from_records(chunk))
        return self.validate_value(chunk)

    def concat(self, parts: list[Any]) -> Any:
        if not parts:
            return pd.Series([], name=self.name, dtype=self.dtype)
        return pd.concat(parts, ignore_index=True)


def one_column(frame: pd.DataFrame, name: str | None = None) -> pd.Series:
    """The column of a table that a one-column argument (a Series, a list of strings) takes:
    the one called ``name``, else the only one.

    Raises:
        SchemaError: several columns and none called ``name`` (the message lists them).

    Example:
        >>> one_column(pd.DataFrame({"text": ["hi"]})).tolist()
        ['hi']
    """
    columns = [str(c) for c in frame.columns]
    if name is not None and name in columns:
        return frame.iloc[:, columns.index(name)]
    if len(columns) == 1:
        return frame.iloc[:, 0]
    raise SchemaError(f"the input has {len(columns)} columns ({', '.join(columns[:10])}) but "
                      "the model takes one: choose it (mlem apply --column NAME)",
                      field=name, expected="one column", got=f"{len(columns)} columns")
