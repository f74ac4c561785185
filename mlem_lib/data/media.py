"""Media types, and the body readers and writers that data types build their formats on.

A data type says which media types its values travel in
(:meth:`~mlem_lib.data.base.DataType.media_types`) and turns bodies into values and back
(:meth:`~mlem_lib.data.base.DataType.decode` / :meth:`~mlem_lib.data.base.DataType.encode`).
This module holds the pieces they share: the names of the media types, JSON with orjson,
CSV / Parquet / ``.npy`` bodies read into pandas and numpy objects, and any result written
as a table. Nothing here knows which data type it works for.

Example:
    >>> import numpy as np
    >>> read_npy(write_npy(np.arange(3))).tolist()
    [0, 1, 2]
    >>> write_table([[1, 2], [3, 4]], CSV)
    b'1,2\\n3,4\\n'
"""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import re
from collections.abc import Iterator, Mapping
from typing import Any

from mlem_lib.errors import HTTPProblem, SchemaError

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/x-parquet"
NPY = "application/x-npy"
#: What tables and arrays travel in: JSON first (every data type has a JSON form).
TABULAR: tuple[str, ...] = (JSON, CSV, PARQUET, NPY)
#: Other names for the same media types.
ALIASES = {"application/vnd.apache.parquet": PARQUET, "application/parquet": PARQUET,
           "application/octet-stream+npy": NPY, "application/npy": NPY,
           "text/json": JSON, "application/csv": CSV}

_BINARY_SCHEMA = {"type": "string", "format": "binary"}
_ORJSON_NUMPY_KINDS = "biuf"


@functools.lru_cache(maxsize=1)
def parquet_available() -> bool:
    """Whether Parquet can be read and written here (pyarrow is installed).

    A server only advertises and accepts the media types it can read, so a package or
    image built without pyarrow never answers a Parquet request with a 500.
    """
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def tabular() -> tuple[str, ...]:
    """:data:`TABULAR` without Parquet where pyarrow is missing.

    Example:
        >>> tabular()[:2]
        ('application/json', 'text/csv')
    """
    if parquet_available():
        return TABULAR
    return tuple(t for t in TABULAR if t != PARQUET)


def body_schema(media_type: str) -> dict[str, Any]:
    """The OpenAPI schema of a non-JSON body: text for ``text/*``, else binary.

    Example:
        >>> body_schema(CSV), body_schema(NPY)["format"]
        ({'type': 'string'}, 'binary')
    """
    if media_type.startswith("text/"):
        return {"type": "string"}
    return dict(_BINARY_SCHEMA)


def require_body(body: bytes | str, expected: str) -> None:
    """Refuse an empty body with a 400 that says what was expected.

    Example:
        >>> require_body(b"", "CSV rows")
        Traceback (most recent call last):
        ...
        mlem_lib.errors.HTTPProblem: empty request body: expected CSV rows
    """
    if not body.strip():
        raise HTTPProblem(400, f"empty request body: expected {expected}", field="body",
                          expected=expected, got="empty body")


# bodies from this size on are parsed with the garbage collector paused (see loads_json)
_GC_PAUSE_BYTES = 64 * 1024


def loads_json(body: bytes) -> Any:
    """Parse a JSON body with orjson.

    Big bodies are parsed with the cyclic garbage collector paused: every list orjson
    builds counts as a new container, so 100k rows of the split layout would otherwise set
    off hundreds of collections that walk the growing heap (4x the parse time). Parsed JSON
    holds no reference cycles, so nothing is left for the collector to find.

    Raises:
        HTTPProblem: 400 for an empty or malformed body.

    Example:
        >>> loads_json(b'{"data": [1, 2]}')
        {'data': [1, 2]}
    """
    import orjson

    require_body(body, "JSON like {\"data\": ...}")
    try:
        if len(body) < _GC_PAUSE_BYTES:
            return orjson.loads(body)
        with _gc_paused():
            return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPProblem(400, f"malformed JSON: {exc}", field="body",
                          expected="valid JSON", got="malformed JSON") from None


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a moment (left alone when already off)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --- a numeric JSON matrix straight into an array ------------------------------------------

# what stands in for the matrix in the rest of the body, parsed by orjson
_MATRIX = "\x00mlem-matrix"
_MATRIX_JSON = b'"\\u0000mlem-matrix"'
_MATRIX_START = re.compile(rb"\[\s*\[")
_MATRIX_END = re.compile(rb"\]\s*\]")
_WHITESPACE = b" \t\r\n"


def loads_json_matrix(body: bytes, dtype: str) -> tuple[Any, Any] | None:
    """A JSON body whose one big value is a rectangular matrix of numbers, read without a
    Python object per number: ``(rest, array)``, where ``rest`` is the rest of the body
    as orjson parses it, holding a marker (see :func:`is_matrix`) where the matrix was.

    The matrix (the first ``[[`` of the body to its last ``]]``) must hold nothing but
    numbers in rows of one length; ``dtype`` is ``"float64"`` or ``"int64"`` (an integer
    matrix holds integers only). The numbers are read by pyarrow's CSV reader, which
    rounds as orjson does (it also takes the few spellings JSON leaves out, like ``+1``
    or ``.5``, as the numbers they plainly are). Anything else (a null, a string, a
    ragged row, NaN or a number beyond the dtype's range, a body that is not JSON, no
    pyarrow) gives ``None``: parse such a body with :func:`loads_json`, which also words
    the error.

    Example:
        >>> rest, arr = loads_json_matrix(b'{"columns": ["a", "b"], "data": [[1, 2.5], [3, 4]]}',
        ...                                "float64")
        >>> rest["columns"], is_matrix(rest["data"]), arr.tolist()
        (['a', 'b'], True, [[1.0, 2.5], [3.0, 4.0]])
        >>> loads_json_matrix(b'{"data": [[1, null]]}', "float64") is None
        True
    """
    start = _MATRIX_START.search(body)
    if start is None:
        return None
    first, end = start.start(), body.rfind(b"]]") + 2
    if end < first + 2:  # pretty-printed: "]" and "]" on lines of their own
        ends = list(_MATRIX_END.finditer(body, first))
        if not ends:
            return None
        end = ends[-1].end()
    matrix = body[first:end]
    if any(space in matrix for space in _WHITESPACE):  # (one-byte searches are memchr)
        matrix = matrix.translate(None, _WHITESPACE)
    rows = matrix[2:-2].replace(b"],[", b"\n")
    # brackets left inside rows (3-D, ragged nesting), a string, an empty first or last
    # row: not a matrix of numbers. Letters fail the number parser, or give non-finite
    # values (nan, inf) that are refused after it.
    if not rows or b"[" in rows or b"]" in rows or b'"' in rows or rows[:1] == b"\n" or \
            rows[-1:] == b"\n":
        return None
    values = _read_number_rows(rows, dtype)
    if values is None:
        return None
    import orjson

    try:
        rest = orjson.loads(body[:first] + _MATRIX_JSON + body[end:])
    except orjson.JSONDecodeError:
        return None
    if orjson.dumps(rest).count(_MATRIX_JSON) != 1:  # the marker spelled in the body too
        return None
    return rest, values


#: JSON bodies from this size on are worth the look for a matrix: below it (about 2000 rows of
#: four numbers) orjson plus the array fast path or a DataFrame is faster (measured 2026-12)
MATRIX_MIN_BYTES = 32 * 1024


def is_matrix(value: Any) -> bool:
    """Whether a value of the ``rest`` of :func:`loads_json_matrix` is where the matrix was."""
    return isinstance(value, str) and value == _MATRIX


def split_columns(payload: Any) -> list[str] | None:
    """The column names of pandas' split layout ``{"columns": [...], "data": <matrix>}``
    whose data is the matrix of :func:`loads_json_matrix`; None for anything else. An
    ``"index"`` (``DataFrame.to_json(orient="split")`` writes one) is left out, as the
    regular reader of the layout does.

    Example:
        >>> rest, _ = loads_json_matrix(b'{"columns": ["a"], "data": [[1], [2]]}', "int64")
        >>> split_columns(rest), split_columns({"columns": ["a"], "data": [[1]]})
        (['a'], None)
    """
    if not isinstance(payload, dict) or payload.keys() - {"index"} != {"columns", "data"}:
        return None
    columns = payload["columns"]
    if not is_matrix(payload["data"]) or not isinstance(columns, list) or \
            not all(isinstance(c, str) for c in columns):
        return None
    return columns


def _read_number_rows(rows: bytes, dtype: str) -> Any:
    """The numbers of comma-separated lines as a 2-D array, or None when they are not
    all numbers of ``dtype``, finite, in lines of one length."""
    try:
        import numpy as np
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return None
    line_end = rows.find(b"\n")
    width = rows[:line_end if line_end >= 0 else len(rows)].count(b",") + 1
    kind = pa.float64() if dtype == "float64" else pa.int64()
    names = [f"c{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(rows),
            read_options=pacsv.ReadOptions(column_names=names,
                                           use_threads=len(rows) > 1 << 20),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, kind),
                                                 null_values=[], strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # ragged rows, a bad number, out of range
        return None
    out = np.empty((table.num_rows, width), dtype=dtype)
    for i, column in enumerate(table.columns):
        if column.null_count:
            return None
        out[:, i] = column.to_numpy()
    if dtype == "float64" and not np.isfinite(out).all():  # 1e999: JSON has no infinity
        return None
    return out


#: How non-finite floats travel in JSON, which has no token for them (orjson would write
#: ``null``, turning a number into a missing value): as these strings, read back by the
#: float data types.
NONFINITE_TOKENS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _nonfinite_token(x: float) -> str:
    return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")


def encode_nonfinite(payload: Any) -> Any:
    """``payload`` with every NaN/inf float replaced by its string token.

    Example:
        >>> encode_nonfinite([1.5, float("nan"), {"x": float("-inf")}])
        [1.5, 'NaN', {'x': '-Infinity'}]
    """
    import math

    import numpy as np

    if isinstance(payload, float | np.floating):
        return payload if math.isfinite(payload) else _nonfinite_token(float(payload))
    if isinstance(payload, np.ndarray):
        return encode_nonfinite(payload.tolist())
    if isinstance(payload, list | tuple):
        return [encode_nonfinite(v) for v in payload]
    if isinstance(payload, dict):
        return {k: encode_nonfinite(v) for k, v in payload.items()}
    return payload


def nonfinite_field(value: Any, name: str = "data") -> str | None:
    """Where ``value`` holds a NaN or an infinity: a DataFrame's first such column, else
    ``name``; None when every number is finite.

    Example:
        >>> import pandas as pd
        >>> nonfinite_field(pd.DataFrame({"a": [1.0], "b": [float("nan")]}))
        'b'
    """
    import numpy as np

    if hasattr(value, "select_dtypes"):
        numbers = value.select_dtypes(include="number")
        for column in numbers.columns:
            if not np.isfinite(numbers[column].to_numpy(dtype=float)).all():
                return str(column)
        return None
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        return None
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        return name
    if arr.dtype == object and encode_nonfinite(arr.tolist()) != arr.tolist():
        return name
    return None


def dumps_json(value: Any, to_json: Any = None) -> bytes:
    """JSON bytes of ``value`` (converted by ``to_json`` first when given).

    Numeric numpy arrays skip ``to_json``: orjson writes them as nested lists directly,
    which is the same JSON, much faster. NaN and infinities are written as the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (see :data:`NONFINITE_TOKENS`).

    Example:
        >>> import numpy as np
        >>> dumps_json(np.array([1.5, 2.0])), dumps_json((1, 2), list)
        (b'[1.5,2.0]', b'[1,2]')
        >>> dumps_json(np.array([0.0, -np.inf]))
        b'[0.0,"-Infinity"]'
    """
    import orjson

    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) and \
            value.dtype.kind in _ORJSON_NUMPY_KINDS and value.dtype.itemsize >= 2:
        import numpy as np

        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return orjson.dumps(encode_nonfinite(value))
        return orjson.dumps(np.ascontiguousarray(value), option=orjson.OPT_SERIALIZE_NUMPY)
    payload = to_json(value) if to_json is not None else value
    out = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    if b"null" in out:  # maybe a NaN that orjson wrote as null: write it as a token
        fixed = orjson.dumps(encode_nonfinite(payload), option=orjson.OPT_SERIALIZE_NUMPY)
        if fixed != out:
            return fixed
    return out


# --- CSV ---------------------------------------------------------------------------------

def csv_text(body: bytes) -> str:
    """The text of a CSV body (a UTF-8 byte-order mark is dropped).

    Raises:
        HTTPProblem: 400 for an empty body.
    """
    text = body.decode("utf-8-sig")
    require_body(text, "CSV rows")
    return text


def csv_first_row(text: str) -> list[str]:
    """The cells of the first line of a CSV text, unquoted and stripped.

    Example:
        >>> csv_first_row('"a", b\\n1,2\\n')
        ['a', 'b']
    """
    first = text.lstrip().split("\n", 1)[0]
    return [t.strip().strip('"') for t in first.split(",")]


def is_number(token: str) -> bool:
    """True when a CSV cell reads as a number (so a first row of them is not a header).

    Example:
        >>> is_number("1e3"), is_number("petal_width")
        (True, False)
    """
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_csv(text: str, header: bool, names: list[str] | None = None,
             options: Mapping[str, Any] | None = None) -> Any:
    """A DataFrame from CSV text; ``Unnamed: n`` columns (a written index) are dropped.

    ``options`` go to ``pandas.read_csv``: a data type's
    :meth:`~mlem_lib.data.base.DataType.csv_read_options` (which columns are text...).

    Raises:
        SchemaError: the CSV cannot be parsed.

    Example:
        >>> read_csv("a,b\\n1,2\\n", header=True).to_dict("records")
        [{'a': 1, 'b': 2}]
    """
    import pandas as pd

    try:
        if header:
            frame = pd.read_csv(io.StringIO(text), skipinitialspace=True, **(options or {}))
            frame.columns = [str(c).strip() for c in frame.columns]
        else:
            frame = pd.read_csv(io.StringIO(text), header=None, names=names,
                                skipinitialspace=True, **(options or {}))
    except (ValueError, pd.errors.ParserError) as exc:
        raise SchemaError(f"malformed CSV: {exc}", field="body", expected="CSV rows",
                          got="malformed CSV") from None
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: ")]
    return frame.drop(columns=unnamed) if unnamed else frame


def read_csv_values(body: bytes, header: bool | None = None,
                    options: Mapping[str, Any] | None = None) -> Any:
    """A numpy array of the cells of a CSV body of values (no column names needed).

    A first row that is not all numbers is taken as a header and skipped, unless
    ``header`` says otherwise (``text/csv; header=present|absent``). ``options`` go to
    ``pandas.read_csv``; a written index (an unnamed first column) is dropped.

    Example:
        >>> read_csv_values(b"x\\n1\\n2\\n").tolist()
        [[1], [2]]
    """
    text = csv_text(body)
    if header is None:
        header = not all(is_number(t) for t in csv_first_row(text))
    if header:
        return read_csv(text, header=True, options=options).to_numpy()
    return read_csv(text, header=False, options=options).to_numpy()


def csv_header_param(params: Mapping[str, str] | None) -> bool | None:
    """``header=present|absent`` of a ``text/csv`` Content-Type (RFC 4180), else ``None``.

    Example:
        >>> csv_header_param({"header": "absent"}), csv_header_param({})
        (False, None)
    """
    value = (params or {}).get("header", "").lower()
    return {"present": True, "absent": False}.get(value)


# --- Parquet and .npy ------------------------------------------------------------------

# Parquet bodies from this size on are read with pyarrow's threads (below it they cost more)
_PARQUET_THREADS_BYTES = 1 << 20


def read_parquet_table(body: bytes) -> Any:
    """A pyarrow Table from a Parquet body.

    Raises:
        HTTPProblem: 400 for an empty body.
        SchemaError: the body is not Parquet.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    require_body(body, "a Parquet file")
    try:
        # straight to pyarrow: pandas.read_parquet costs ten times more for 1000 rows
        return pq.ParquetFile(pa.BufferReader(body)).read(
            use_threads=len(body) > _PARQUET_THREADS_BYTES)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise _unreadable_parquet(exc) from None


def read_parquet(body: bytes) -> Any:
    """A DataFrame from a Parquet body.

    Raises:
        HTTPProblem: 400 for an empty body.
        SchemaError: the body is not Parquet.
    """
    table = read_parquet_table(body)
    try:  # (pandas metadata: the index is back)
        return table.to_pandas(use_threads=len(body) > _PARQUET_THREADS_BYTES)
    except Exception as exc:
        raise _unreadable_parquet(exc) from None


def _unreadable_parquet(exc: Exception) -> SchemaError:
    return SchemaError(f"unreadable Parquet body: {type(exc).__name__}: {exc}",
                       field="body", expected="Parquet file", got="bytes")


def read_npy(body: bytes) -> Any:
    """A numpy array from an ``.npy`` body (never unpickles objects).

    Raises:
        HTTPProblem: 400 for an empty body.
        SchemaError: the body is not an ``.npy`` array.
    """
    import numpy as np

    if not body:
        require_body(body, "an .npy array")  # (binary: only a truly empty body is empty)
    try:
        return np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SchemaError(f"unreadable .npy body: {exc}", field="body",
                          expected=".npy array", got="bytes") from None


def write_npy(value: Any) -> bytes:
    """An ``.npy`` body of an array-like value (DataFrames by their values).

    Raises:
        HTTPProblem: 406 for values without a fixed numeric dtype.
    """
    import numpy as np

    arr = value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
    if arr.dtype.kind == "O":
        raise HTTPProblem(406, "this result has no fixed numeric dtype; ask for JSON",
                          field="Accept", expected=JSON, got=NPY)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


# --- any result as a table ---------------------------------------------------------------

def table(value: Any) -> Any:
    """A DataFrame of a result: DataFrames as they are, arrays with columns ``0``, ``1``...

    Raises:
        HTTPProblem: 406 for arrays of more than two dimensions.

    Example:
        >>> list(table([[1, 2]]).columns)
        ['0', '1']
    """
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value
    if isinstance(value, pd.Series):
        return value.to_frame(name=str(value.name) if value.name is not None else "0")
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim == 1:
        return pd.DataFrame({"0": arr})
    if arr.ndim == 2:
        return pd.DataFrame(arr, columns=[str(i) for i in range(arr.shape[1])])
    raise HTTPProblem(406, f"a result of shape {arr.shape} cannot be written as a table",
                      field="Accept", expected=f"{JSON} or {NPY}", got=str(arr.shape))


def write_table(value: Any, media_type: str, index_cols: list[str] | None = None) -> bytes:
    """A CSV or Parquet body of a result.

    DataFrames keep their column names (a CSV header) and their ``index_cols`` as columns;
    arrays and Series are written as bare values (CSV without a header), as SageMaker
    expects.

    Example:
        >>> write_table([1, 2], CSV)
        b'1\\n2\\n'
    """
    frame = table(value)
    named = type(value).__name__ == "DataFrame"
    if named and index_cols and list(frame.index.names) == list(index_cols):
        frame = frame.reset_index()
    if media_type == CSV:
        return str(frame.to_csv(index=False, header=named)).encode()
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()
