"""One column of a table: what its saved dtype means on the way in and on the way out.

The pandas data types keep one dtype string per column, as pandas prints it
(``float64``, ``str``, ``category``, ``Int64``, ``boolean``, ``datetime64[us]``,
``datetime64[ns, Europe/Paris]``). A :class:`Column` turns whatever arrives into a
column of exactly that dtype, or raises a :class:`~mlem_lib.errors.SchemaError` that
names the column, the row and the value:

* JSON values (a list per column), CSV cells (read as text where the dtype is not a
  number, so ``123`` in a string column stays ``"123"``), Parquet columns and
  in-memory Series all go through :meth:`Column.coerce`;
* missing values (``null``, an empty CSV cell, ``NaN``, ``NaT``, ``pd.NA``) become the
  column's own missing value: ``NaN`` for floats, ``NaT`` for date-times, ``<NA>`` for
  the nullable dtypes; an ``int64`` or ``bool`` column cannot hold one, and says so;
* date-times are ISO 8601 strings, with ``T`` or a space, with or without a UTC
  offset (``Z``, ``+02:00``). A value with an offset is converted to the column's time
  zone (to UTC for a naive column); a naive value in a time-zone-aware column is read
  as that zone's wall time. Numbers are milliseconds since 1970-01-01 UTC, accepted
  only when the schema's ``date_format`` is ``epoch_ms``;
* categories are checked against the ones the model was fitted with (recorded at
  save), so a value outside them is an error and codes keep their meaning.

On the way out, :func:`json_values` writes date-times as ISO 8601 strings (or epoch
milliseconds), categories as their values and every missing value of a non-float
column as ``null``.

Example:
    >>> import pandas as pd
    >>> when = Column("when", "datetime64[us, UTC]")
    >>> [str(t) for t in when.from_values(["2024-05-01 12:00+02:00", "2024-05-01 10:00Z", None])]
    ['2024-05-01 10:00:00+00:00', '2024-05-01 10:00:00+00:00', 'NaT']
    >>> json_values(pd.Series(pd.to_datetime(["2024-05-01 10:00"])))
    ['2024-05-01T10:00:00']
    >>> Column("n", "int64").from_values([1, None])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlem_lib.errors.SchemaError: column 'n': missing value, but an int64 column cannot ...
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlem_lib.errors import SchemaError

STRING_DTYPES = ("object", "str", "string", "string[python]", "string[pyarrow]")
EPOCH_MS = "epoch_ms"
ISO = "iso"
DATE_FORMATS = (ISO, EPOCH_MS)
#: A time of day followed by a UTC offset: the part of an ISO 8601 string that makes it
#: time-zone aware (``2024-01-01`` alone ends in ``-01`` but has no offset).
_OFFSET = re.compile(
    r"[T ]\d{1,2}(?::\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2}(?::\d{2}"
    r"(?:\.\d+)?)?)?)$", re.IGNORECASE)
_SECONDS_OFFSET = re.compile(r"[+-]\d{2}:\d{2}:\d{2}(?:\.\d+)?$")
_NULLABLE_NUMBER = re.compile(r"^(U?Int(8|16|32|64)|Float(32|64))$")
_EXAMPLE_DATETIME = "2024-01-01T00:00:00"


@functools.lru_cache(maxsize=256)
def kind_of(dtype: str) -> str:
    """What a dtype string is: ``string``, ``category``, ``datetime``, ``timedelta``,
    ``nullable`` (``Int64``, ``Float64``, ``boolean``), ``number`` (numpy numbers and
    ``bool``) or ``other``.

    Example:
        >>> [kind_of(d) for d in ("str", "category", "datetime64[ns, UTC]", "Int64", "bool")]
        ['string', 'category', 'datetime', 'nullable', 'number']
    """
    if dtype in STRING_DTYPES:
        return "string"
    if dtype == "category":
        return "category"
    if dtype.startswith("datetime64"):
        return "datetime"
    if dtype.startswith("timedelta64"):
        return "timedelta"
    if dtype == "boolean" or _NULLABLE_NUMBER.match(dtype):
        return "nullable"
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        return "other"
    return "number" if kind in "biufc" else "other"


def _pandas_dtype(dtype: str) -> Any:
    return pd.api.types.pandas_dtype(dtype)


def _preview(value: Any) -> str:
    return f"{value!r:.40}"


def _first(mask: Any) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def categories_of(series: Any) -> tuple[list[Any] | None, bool]:
    """The categories of a categorical Series as JSON values (``None`` when they are not
    strings, numbers or booleans), and whether they are ordered.

    Example:
        >>> categories_of(pd.Series(["b", "a"], dtype="category"))
        (['a', 'b'], False)
    """
    dtype = series.dtype
    cats = [v.item() if isinstance(v, np.generic) else v for v in dtype.categories.tolist()]
    if not all(isinstance(v, str | int | float | bool) for v in cats):
        return None, bool(dtype.ordered)
    return cats, bool(dtype.ordered)


@dataclass(frozen=True)
class Column:
    """A column's name and saved dtype, with the categories and date format it was saved with.

    Attributes:
        name: the column name (used in error messages).
        dtype: the dtype string pandas printed at save.
        categories: for ``category`` columns, the categories the model was fitted with.
        ordered: whether those categories are ordered.
        date_format: ``iso`` (default) or ``epoch_ms``: how date-times travel in JSON.
    """

    name: str
    dtype: str
    categories: tuple[Any, ...] | None = None
    ordered: bool = False
    date_format: str | None = None

    @property
    def kind(self) -> str:
        return kind_of(self.dtype)

    def _error(self, message: str, expected: str, got: str, row: int | None = None
               ) -> SchemaError:
        at = f" (row {row})" if row is not None else ""
        return SchemaError(f"column '{self.name}': {message}{at}", field=self.name,
                           expected=expected, got=got, row=row)

    # --- in --------------------------------------------------------------------------
    def matches(self, col: Any) -> bool:
        """True when ``col`` already has exactly this column's dtype (and categories)."""
        if str(col.dtype) != self.dtype:
            return False
        if self.kind == "category" and self.categories is not None:
            cats = col.dtype.categories
            return len(cats) == len(self.categories) and bool(
                (cats == pd.Index(list(self.categories))).all())
        return True

    def coerce(self, col: Any) -> Any:
        """``col`` (from CSV, Parquet, JSON or memory) as a Series of this column's dtype.

        Raises:
            SchemaError: a value that does not fit, naming the column and the row.
        """
        if self.matches(col):
            return col
        kind = self.kind
        if kind == "string":
            return self._to_string(col)
        if kind == "category":
            return self._to_category(col)
        if kind == "datetime":
            return self._to_datetime(col)
        if kind == "timedelta":
            return self._to_timedelta(col)
        if kind == "nullable":
            return self._to_nullable(col)
        if kind == "number":
            return self._to_number(col)
        try:
            return col.astype(self.dtype)
        except (TypeError, ValueError) as exc:
            raise self._error(f"expected dtype {self.dtype}, got {col.dtype}", self.dtype,
                              str(col.dtype)) from exc

    def from_values(self, values: list[Any]) -> Any:
        """A column of this dtype from decoded JSON values (a numpy array or a Series)."""
        if self.kind == "number":
            return self._numbers_from_values(values)
        if self.kind == "string" and self.dtype != "object":
            self._refuse_containers(values)
            return self._to_string(pd.Series(values, dtype=object))
        return self.coerce(pd.Series(values, dtype=object))

    def _refuse_containers(self, values: Any) -> None:
        for i, v in enumerate(values):
            if isinstance(v, dict | list):
                raise self._error(f"expected a {self.dtype} value, got {type(v).__name__} "
                                  f"{_preview(v)}", self.dtype, type(v).__name__, i)

    def _missing_error(self, row: int) -> SchemaError:
        nullable = {"b": "boolean"}.get(np.dtype(self.dtype).kind,
                                        self.dtype[:1].upper() + self.dtype[1:])
        return self._error(f"missing value, but an {self.dtype} column cannot hold one (save "
                           f"the model with the nullable dtype {nullable} to accept missing "
                           "values)", self.dtype, "missing value", row)

    def _numbers_from_values(self, values: list[Any]) -> Any:
        from mlem_lib.data.casting import coerce_dtype, parse_nonfinite_tokens

        try:
            arr = np.asarray(values)
        except ValueError as exc:
            raise self._error(f"expected {self.dtype} values", self.dtype,
                              "mixed values") from exc
        target = np.dtype(self.dtype).kind
        if target != "b" and arr.dtype.kind != "b" and any(type(v) is bool for v in values):
            i = next(i for i, v in enumerate(values) if type(v) is bool)
            raise self._error(f"expected {self.dtype} numbers, got true/false", self.dtype,
                              "bool", i)
        if arr.dtype.kind in "OUS" and target in "fc":
            parsed = parse_nonfinite_tokens(np.asarray(values, dtype=object))  # "NaN" in JSON
            if parsed is not None:
                arr = parsed
        if arr.dtype.kind == "O" and any(v is None for v in values):
            i = next(i for i, v in enumerate(values) if v is None)
            if np.dtype(self.dtype).kind not in "fc":
                raise self._missing_error(i)
            # how NaN travels in JSON is one documented encoding for every float; a bare
            # null is not a float64 value (MLEM answers it with a 4xx too)
            raise self._error(f"null is not a {self.dtype} value", self.dtype, "null", i)
        if arr.dtype.kind in "OUS":
            bad: Any
            at, bad = next(((i, v) for i, v in enumerate(values)
                            if isinstance(v, str | dict | list)), (None, None))
            if bad is None:  # only numbers: an integer too big for any numpy integer
                at, bad = next(((i, v) for i, v in enumerate(values)
                                if isinstance(v, int) and not -2**63 <= v < 2**64), (0, None))
                raise self._error(f"value {bad!r} is out of the range of {self.dtype}",
                                  self.dtype, repr(bad), at)
            raise self._error(f"expected dtype {self.dtype}, got {type(bad).__name__} value "
                              f"{_preview(bad)}", self.dtype, type(bad).__name__, at)
        return coerce_dtype(arr, self.dtype, self.name)

    def _to_number(self, col: Any) -> Any:
        from mlem_lib.data.casting import coerce_dtype

        target = np.dtype(self.dtype)
        if col.dtype.kind == "O" or pd.api.types.is_string_dtype(col.dtype) or isinstance(
                col.dtype, pd.api.extensions.ExtensionDtype):
            missing = col.isna().to_numpy()
            if missing.any() and target.kind not in "fc":
                raise self._missing_error(_first(missing))
            if col.dtype.kind == "O" or isinstance(col.dtype, pd.api.extensions.ExtensionDtype):
                values = col.to_numpy(dtype=object, na_value=np.nan)
                if not any(isinstance(v, str) for v in values):
                    if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype.kind == "O":
                        return self._numbers_from_values(
                            [None if m else v for v, m in zip(values, missing, strict=True)])
                    return coerce_dtype(pd.Series(values.astype(float if missing.any()
                                                                 else values.dtype)),
                                        self.dtype, self.name)
            texts = col.tolist()
            i = next((i for i, v in enumerate(texts) if isinstance(v, str) and not _is_number(v)),
                     next(i for i, v in enumerate(texts) if isinstance(v, str)))
            raise self._error(f"expected dtype {self.dtype}, got str value "
                              f"{_preview(col.iloc[i])}", self.dtype, "str", i)
        if col.dtype.kind == "f" and target.kind in "iub":
            missing = col.isna().to_numpy()
            if missing.any():
                raise self._missing_error(_first(missing))
        return coerce_dtype(col, self.dtype, self.name)

    def _to_string(self, col: Any) -> Any:
        if self.dtype == "object":
            if col.dtype.kind == "O":
                return col
            if pd.api.types.is_string_dtype(col.dtype) or col.dtype.kind in "OUSb":
                return col.astype(object)
            raise self._error(f"expected strings, got {col.dtype}", "str", str(col.dtype))
        if col.dtype.kind == "O":
            self._refuse_containers(col.tolist())
        elif col.dtype.kind in "mM":
            raise self._error(f"expected strings, got {col.dtype}", "str", str(col.dtype))
        try:
            return col.astype(self.dtype)
        except (TypeError, ValueError) as exc:
            raise self._error(f"expected strings, got {col.dtype}", "str",
                              str(col.dtype)) from exc

    def _to_category(self, col: Any) -> Any:
        if self.categories is None:  # saved before categories were recorded
            return col if str(col.dtype) == "category" else col.astype("category")
        cats = pd.Index(list(self.categories))
        values = col.astype(object) if isinstance(col.dtype, pd.CategoricalDtype) else col
        if values.dtype.kind == "O":
            self._refuse_containers(values.tolist())
        if cats.dtype.kind in "iuf" and values.dtype.kind not in "iufb":
            # CSV cells and JSON strings of numeric categories: "2" is the category 2
            numbers = pd.to_numeric(values.astype(object), errors="coerce")
            values = numbers.where(numbers.notna(), values.astype(object))
        elif pd.api.types.is_string_dtype(cats.dtype) and values.dtype.kind in "iufb":
            values = values.astype("str")
        missing = col.isna().to_numpy()
        unknown = ~(values.isin(cats).to_numpy() | missing)
        if unknown.any():
            i = _first(unknown)
            shown = ", ".join(repr(c) for c in list(cats[:10]))
            more = f", ... ({len(cats)} in all)" if len(cats) > 10 else ""
            raise self._error(f"{_preview(col.iloc[i])} is not one of the categories the "
                              f"model was saved with ({shown}{more})",
                              f"one of {len(cats)} categories", _preview(col.iloc[i]), i)
        dtype = pd.CategoricalDtype(cats, ordered=self.ordered)
        return pd.Series(pd.Categorical(values.astype(object).where(~missing, None),
                                        dtype=dtype), index=col.index, name=col.name)

    def _to_timedelta(self, col: Any) -> Any:
        if col.dtype.kind == "m":
            return col.astype(self.dtype)
        if col.dtype.kind in "iufb":
            raise self._error("expected ISO 8601 durations such as 'P0DT1H0M0S' or "
                              f"'1 days 01:00:00', got {col.dtype}", "duration",
                              str(col.dtype))
        try:
            return pd.to_timedelta(col.astype(object)).astype(self.dtype)
        except (TypeError, ValueError) as exc:
            raise self._error(f"unreadable durations ({exc})", "duration",
                              "other") from exc

    def _to_nullable(self, col: Any) -> Any:
        target = _pandas_dtype(self.dtype)
        boolean = self.dtype == "boolean"
        if col.dtype.kind == "O" or pd.api.types.is_string_dtype(col.dtype):
            values = col.astype(object)
            missing = values.isna().to_numpy()
            for i, v in enumerate(values.tolist()):
                if missing[i]:
                    continue
                is_bool = isinstance(v, bool | np.bool_)
                if is_bool != boolean or not isinstance(v, int | float | np.number | bool |
                                                        np.bool_):
                    raise self._error(f"expected a {self.dtype} value, got "
                                      f"{type(v).__name__} {_preview(v)}", self.dtype,
                                      type(v).__name__, i)
            cleaned = [None if m else v for v, m in zip(values.tolist(), missing, strict=True)]
            try:
                return pd.Series(pd.array(cleaned, dtype=target), index=col.index,
                                 name=col.name)
            except (TypeError, ValueError) as exc:
                raise self._error(f"values do not fit {self.dtype} ({exc})", self.dtype,
                                  "other") from exc
        if boolean and col.dtype.kind == "b":
            return col.astype(target)
        if boolean or col.dtype.kind in "mM" or (col.dtype.kind == "b" and not boolean):
            raise self._error(f"expected {self.dtype} values, got {col.dtype}", self.dtype,
                              str(col.dtype))
        try:
            return col.astype(target)
        except (TypeError, ValueError) as exc:
            raise self._error(f"expected {self.dtype} values, got {col.dtype} ({exc})",
                              self.dtype, str(col.dtype)) from exc

    def _to_datetime(self, col: Any) -> Any:
        target = _pandas_dtype(self.dtype)
        tz = getattr(target, "tz", None)
        if col.dtype.kind == "M":
            current = col.dt.tz
            if current is None and tz is not None:
                col = self._localize(col, tz)
            elif current is not None:
                col = col.dt.tz_convert(tz) if tz is not None else col.dt.tz_convert(
                    "UTC").dt.tz_localize(None)
            return col.astype(target)
        values = col.astype(object).reset_index(drop=True)  # labels are row numbers
        missing = values.isna().to_numpy()
        present = ~missing
        kinds = np.array([type(v) for v in values.tolist()], dtype=object)
        is_str = np.array([issubclass(k, str) for k in kinds]) & present
        is_num = np.array([issubclass(k, int | float | np.number) and not issubclass(
            k, bool | np.bool_) for k in kinds]) & present
        other = present & ~is_str & ~is_num
        if other.any():
            i = _first(other)
            raise self._error(f"expected an ISO 8601 date-time string, got "
                              f"{type(values.iloc[i]).__name__} {_preview(values.iloc[i])}",
                              "date-time", type(values.iloc[i]).__name__, i)
        if is_num.any() and self.date_format != EPOCH_MS:
            i = _first(is_num)
            raise self._error(f"expected an ISO 8601 date-time string such as "
                              f"'{_EXAMPLE_DATETIME}', got the number {_preview(values.iloc[i])}"
                              " (numbers are read as epoch milliseconds only when the schema "
                              "says date_format: epoch_ms)", "date-time string", "number", i)
        out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]", name=col.name)
        if is_str.any():
            texts = values[is_str].astype(str).str.strip()
            aware = texts.str.contains(_OFFSET).to_numpy()
            if aware.any():
                out[texts.index[aware]] = self._parse(texts[aware], utc=True)
            if (~aware).any():
                naive = self._parse(texts[~aware], utc=False)
                out[texts.index[~aware]] = self._localize(naive, tz or "UTC").dt.tz_convert(
                    "UTC")
        if is_num.any():
            numbers = pd.to_numeric(values[is_num])
            out[numbers.index] = pd.to_datetime(numbers, unit="ms", utc=True)
        local = out.dt.tz_convert(tz) if tz is not None else out.dt.tz_convert(None)
        local.index = col.index
        return local.astype(target)

    def _parse(self, texts: Any, utc: bool) -> Any:
        try:
            return pd.to_datetime(texts, format="ISO8601", utc=utc)
        except (ValueError, TypeError, OverflowError):
            pass
        if utc and texts.str.contains(_SECONDS_OFFSET).any():
            # offsets with seconds (local mean time before 1911: Paris was +00:09:21), as
            # isoformat() writes them; pandas does not read them, Python does
            from datetime import datetime

            try:
                return pd.Series([pd.Timestamp(datetime.fromisoformat(t)).tz_convert("UTC")
                                  for t in texts], index=texts.index, dtype="datetime64[ns, UTC]")
            except (ValueError, TypeError, OverflowError):
                pass
        for row, text in texts.items():  # find the value to name in the error
            try:
                pd.to_datetime(pd.Series([text]), format="ISO8601", utc=utc)
            except (ValueError, TypeError, OverflowError):
                raise self._error(f"{_preview(text)} is not an ISO 8601 date-time (such as "
                                  f"'{_EXAMPLE_DATETIME}' or '2024-01-01 00:00:00+02:00')",
                                  "ISO 8601 date-time", _preview(text), int(row)) from None
        raise self._error("unreadable date-times", "ISO 8601 date-time", "other")

    def _localize(self, col: Any, tz: Any) -> Any:
        try:
            return col.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:  # pytz/zoneinfo errors derive from these
            raise self._error(f"a local time that does not exist or is ambiguous in {tz} "
                              f"({exc}); send it with its UTC offset", "date-time",
                              "ambiguous local time") from None

    # --- out -------------------------------------------------------------------------
    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of one value of this column."""
        kind = self.kind
        if kind == "category":
            if self.categories is not None:
                return {"enum": [*self.categories, None]}
            return {"type": ["string", "null"]}
        if kind == "string":
            return {"type": ["string", "null"]}
        if kind == "datetime":
            if self.date_format == EPOCH_MS:
                return {"type": ["integer", "null"],
                        "description": "milliseconds since 1970-01-01T00:00:00Z"}
            return {"type": ["string", "null"], "format": "date-time"}
        if kind == "timedelta":
            return {"type": ["string", "null"], "format": "duration"}
        if kind == "nullable":
            base = "boolean" if self.dtype == "boolean" else (
                "number" if self.dtype.startswith("Float") else "integer")
            return {"type": [base, "null"]}
        if kind == "number":
            return {"type": {"f": "number", "i": "integer", "u": "integer",
                             "b": "boolean"}.get(np.dtype(self.dtype).kind, "number")}
        return {}

    def example_value(self) -> Any:
        """One valid value of this column, in its JSON form."""
        kind = self.kind
        if kind == "category":
            return self.categories[0] if self.categories else ""
        if kind == "string":
            return ""
        if kind == "datetime":
            tz = getattr(_pandas_dtype(self.dtype), "tz", None)
            stamp = pd.Timestamp(_EXAMPLE_DATETIME, tz=tz)
            return int(stamp.timestamp() * 1000) if self.date_format == EPOCH_MS else \
                stamp.isoformat()
        if kind == "timedelta":
            return pd.Timedelta(0).isoformat()
        if kind == "nullable":
            return False if self.dtype == "boolean" else 0
        if kind == "number":
            return np.zeros((), dtype=self.dtype)[()].item()
        return None

    def csv_dtype(self) -> str | None:
        """How ``pandas.read_csv`` should read this column: as text (``str``) for every
        dtype that is not a number; ``None`` lets pandas parse numbers itself."""
        return "str" if self.kind in ("string", "category", "datetime", "timedelta") else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- out: JSON values of any column --------------------------------------------------

def json_values(series: Any, date_format: str | None = None) -> Any:
    """The JSON values of a column, or ``None`` when pandas' own values already are.

    Date-times become ISO 8601 strings (or epoch milliseconds with ``epoch_ms``),
    durations ISO 8601 durations, categories their values, and the missing values of
    every column that is not a float ``None``.

    Example:
        >>> json_values(pd.Series([1, None], dtype="Int64"))
        [1, None]
        >>> json_values(pd.Series([1.5])) is None
        True
    """
    dtype = series.dtype
    kind = getattr(dtype, "kind", "O")
    if kind == "M":
        if date_format == EPOCH_MS:
            ms = series.dt.as_unit("ms").astype("int64").tolist()
            return [None if m else v for v, m in zip(ms, series.isna().tolist(), strict=True)]
        return [None if v is pd.NaT else v.isoformat() for v in series.tolist()]
    if kind == "m":
        return [None if v is pd.NaT else v.isoformat() for v in series.tolist()]
    if isinstance(dtype, pd.CategoricalDtype):
        inner = json_values(series.astype(dtype.categories.dtype), date_format) \
            if dtype.categories.dtype.kind in "mM" else None
        values = inner if inner is not None else series.astype(object).tolist()
        return [None if _is_missing(v) else v for v in values]
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) or (
            kind == "O" and series.hasnans):
        return [None if _is_missing(v) else (v.item() if isinstance(v, np.generic) else v)
                for v in series.astype(object).tolist()]
    return None


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and value != value


def frame_records(frame: Any, date_format: str | None = None) -> list[dict[str, Any]]:
    """The rows of a DataFrame as JSON-ready objects (see :func:`json_values`).

    Example:
        >>> frame_records(pd.DataFrame({"t": pd.to_datetime(["2024-01-01"]), "x": [1]}))
        [{'t': '2024-01-01T00:00:00', 'x': 1}]
    """
    special: dict[int, list[Any]] = {}
    for i, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, np.dtype) and dtype.kind in "biufc":
            continue  # numbers: pandas' own values are JSON values
        values = json_values(frame.iloc[:, i], date_format)
        if values is not None:
            special[i] = values
    if not special:
        return list(frame.to_dict("records"))
    frame = frame.copy(deep=False)
    for i, values in special.items():
        frame.isetitem(i, pd.Series(values, index=frame.index, dtype=object))
    return list(frame.to_dict("records"))
