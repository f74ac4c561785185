"""Request bodies in, response bodies out: JSON, CSV, Parquet and ``.npy``.

The server validates a whole batch at once with the argument's schema
(:meth:`DataType.from_json` / :meth:`DataType.validate_value`), never row by row
through pydantic, and writes JSON with orjson.

Example:
    >>> media_type("application/json; charset=utf-8")
    'application/json'
    >>> choose_output("text/csv;q=0.5, application/json")
    'application/json'
"""

from __future__ import annotations

import io
from typing import Any

from mlem_lib.data.base import DataType
from mlem_lib.errors import HTTPProblem, SchemaError

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/x-parquet"
NPY = "application/x-npy"
INPUT_TYPES = (JSON, CSV, PARQUET, NPY)
OUTPUT_TYPES = (JSON, CSV, PARQUET, NPY)
_ALIASES = {"application/vnd.apache.parquet": PARQUET, "application/parquet": PARQUET,
            "application/octet-stream+npy": NPY, "application/npy": NPY,
            "text/json": JSON, "application/csv": CSV,
            # what curl and friends send when nobody sets a type: try JSON
            "application/x-www-form-urlencoded": JSON, "text/plain": JSON}


def media_type(header: str | None) -> str:
    """The bare, lower-cased media type of a Content-Type header (JSON when absent)."""
    if not header:
        return JSON
    kind = header.split(";", 1)[0].strip().lower()
    return _ALIASES.get(kind, kind)


def choose_output(accept: str | None) -> str:
    """The response format for an Accept header: the best supported one, JSON by default.

    Raises:
        HTTPProblem: 406 when the header names only formats the server cannot write.
    """
    if not accept:
        return JSON
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        pieces = part.split(";")
        kind = _ALIASES.get(pieces[0].strip().lower(), pieces[0].strip().lower())
        q = 1.0
        for param in pieces[1:]:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and kind:
            ranked.append((-q, i, kind))
    for _, _, kind in sorted(ranked):
        if kind in OUTPUT_TYPES:
            return kind
        if kind in ("*/*", "application/*"):
            return JSON
        if kind == "text/*":
            return CSV
    raise HTTPProblem(406, f"cannot answer in {accept!r}; supported: {', '.join(OUTPUT_TYPES)}",
                      field="Accept", expected=" or ".join(OUTPUT_TYPES), got=accept)


def loads_json(body: bytes) -> Any:
    """Parse a JSON body with orjson.

    Raises:
        HTTPProblem: 400 for an empty or malformed body.
    """
    import orjson

    if not body.strip():
        raise HTTPProblem(400, "empty request body: expected JSON like {\"data\": ...}",
                          field="body", expected="JSON object", got="empty body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPProblem(400, f"malformed JSON: {exc}", field="body",
                          expected="valid JSON", got="malformed JSON") from None


def _no_header_frame(text: io.StringIO, names: list[str] | None) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(text, header=None, names=names, skipinitialspace=True)
    except (ValueError, pd.errors.ParserError) as exc:
        raise SchemaError(f"malformed CSV: {exc}", field="body", expected="CSV rows",
                          got="malformed CSV") from None


def read_csv(body: bytes, arg_type: DataType) -> Any:
    """Read a CSV body for ``arg_type``: a header row is optional.

    Without a header the columns are taken in the schema's order, as SageMaker sends them.
    """
    import pandas as pd

    text = body.decode("utf-8-sig")
    if not text.strip():
        raise HTTPProblem(400, "empty request body: expected CSV rows", field="body",
                          expected="CSV rows", got="empty body")
    first = text.lstrip().split("\n", 1)[0]
    tokens = [t.strip().strip('"') for t in first.split(",")]
    kind = arg_type.type
    if kind == "dataframe":
        columns: list[str] = list(getattr(arg_type, "columns", []))
        if set(tokens) & set(columns):
            frame = pd.read_csv(io.StringIO(text), skipinitialspace=True)
            frame.columns = [str(c).strip() for c in frame.columns]
            return frame
        if len(tokens) != len(columns):
            raise SchemaError(
                f"CSV rows have {len(tokens)} values, expected {len(columns)} "
                f"(columns in order: {', '.join(columns)})", field="body",
                expected=f"{len(columns)} values per row", got=f"{len(tokens)} values")
        return _no_header_frame(io.StringIO(text), columns)
    if kind in ("ndarray", "series", "array"):
        if not _numeric(tokens[0]):
            text = text.lstrip().split("\n", 1)[1] if "\n" in text.lstrip() else ""
        frame = _no_header_frame(io.StringIO(text), None)
        arr = frame.to_numpy()
        if kind != "ndarray" or len(getattr(arg_type, "shape", [])) == 1:
            arr = arr[:, 0] if arr.ndim == 2 and arr.shape[1] == 1 else arr
        if kind == "array":
            return arr.tolist()
        return arr
    raise HTTPProblem(415, f"CSV bodies are not supported for {arg_type.describe()} arguments",
                      field="Content-Type", expected=JSON, got=CSV)


def _numeric(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_binary(body: bytes, kind: str, arg_type: DataType) -> Any:
    """Read a Parquet or ``.npy`` body into a DataFrame or an ndarray for ``arg_type``."""
    import numpy as np

    if not body:
        raise HTTPProblem(400, f"empty request body: expected {kind}", field="body",
                          expected=kind, got="empty body")
    if kind == PARQUET:
        import pandas as pd

        try:
            obj: Any = pd.read_parquet(io.BytesIO(body))
        except Exception as exc:  # pyarrow raises several unrelated types
            raise SchemaError(f"unreadable Parquet body: {type(exc).__name__}: {exc}",
                              field="body", expected="Parquet file", got="bytes") from None
        if arg_type.type == "ndarray":
            obj = obj.to_numpy()
        return obj
    try:
        arr = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SchemaError(f"unreadable .npy body: {exc}", field="body",
                          expected=".npy array", got="bytes") from None
    if arg_type.type == "dataframe":
        import pandas as pd

        columns = list(getattr(arg_type, "columns", []))
        if arr.ndim != 2 or arr.shape[1] != len(columns):
            raise SchemaError(
                f"an .npy body for a table needs shape (n, {len(columns)}), got "
                f"{tuple(arr.shape)}", field="body", expected=f"shape (n, {len(columns)})",
                got=str(tuple(arr.shape)))
        return pd.DataFrame(arr, columns=columns)
    return arr


def decode_input(body: bytes, content_type: str | None, arg_type: DataType) -> tuple[str, Any]:
    """Turn a non-JSON body into a Python object to validate (JSON is handled by the caller).

    Returns:
        The media type and the object.
    """
    kind = media_type(content_type)
    if kind == CSV:
        return kind, read_csv(body, arg_type)
    if kind in (PARQUET, NPY):
        return kind, read_binary(body, kind, arg_type)
    raise HTTPProblem(415, f"unsupported Content-Type {content_type!r}; send one of "
                           f"{', '.join(INPUT_TYPES)}", field="Content-Type",
                      expected=" or ".join(INPUT_TYPES), got=content_type)


# --- output -----------------------------------------------------------------

_ORJSON_NUMPY_KINDS = "biuf"


def dumps_json(result: Any, returns: DataType) -> bytes:
    """JSON bytes of a result, in MLEM's shapes (ndarray -> nested lists, DataFrame -> values)."""
    import orjson

    module = type(result).__module__
    if module == "numpy" and getattr(result, "ndim", None) and result.dtype.kind in \
            _ORJSON_NUMPY_KINDS and result.dtype.itemsize >= 2:
        import numpy as np

        return orjson.dumps(np.ascontiguousarray(result), option=orjson.OPT_SERIALIZE_NUMPY)
    if returns.type in ("unspecified", "unknown"):
        from mlem_lib.data.convert import to_jsonable

        return orjson.dumps(to_jsonable(result), option=orjson.OPT_SERIALIZE_NUMPY)
    return orjson.dumps(returns.to_json(result), option=orjson.OPT_SERIALIZE_NUMPY)


def _as_frame(result: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, pd.Series):
        return result.to_frame(name=str(result.name) if result.name is not None else "0")
    arr = np.asarray(result)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim == 1:
        return pd.DataFrame({"0": arr})
    if arr.ndim == 2:
        return pd.DataFrame(arr, columns=[str(i) for i in range(arr.shape[1])])
    raise HTTPProblem(406, f"a result of shape {arr.shape} cannot be written as a table",
                      field="Accept", expected=f"{JSON} or {NPY}", got=str(arr.shape))


def dumps(result: Any, returns: DataType, kind: str) -> bytes:
    """Encode a result in the chosen output format.

    Example:
        >>> from mlem_lib.data.base import UnspecifiedType
        >>> dumps([1, 2], UnspecifiedType(), "text/csv")
        b'1\\n2\\n'
    """
    if kind == JSON:
        return dumps_json(result, returns)
    if kind == NPY:
        import numpy as np

        arr = result.to_numpy() if hasattr(result, "to_numpy") else np.asarray(result)
        if arr.dtype.kind == "O":
            raise HTTPProblem(406, "this result has no fixed numeric dtype; ask for JSON",
                              field="Accept", expected=JSON, got=NPY)
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        return buf.getvalue()
    frame = _as_frame(result)
    named = type(result).__name__ == "DataFrame"
    if kind == CSV:
        if named and getattr(returns, "index_cols", None):
            frame = frame.reset_index()
        return frame.to_csv(index=False, header=named).encode()
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def from_output(body: bytes, kind: str, returns: DataType) -> Any:
    """Decode a response body written by :func:`dumps` (what the client does).

    Example:
        >>> from mlem_lib.data.base import UnspecifiedType
        >>> from_output(b"[1, 2]", JSON, UnspecifiedType())
        [1, 2]
    """
    import orjson

    if kind == JSON:
        return returns.from_json(orjson.loads(body))
    if kind == NPY:
        import numpy as np

        return returns.validate_value(np.load(io.BytesIO(body), allow_pickle=False))
    import pandas as pd

    frame = pd.read_parquet(io.BytesIO(body)) if kind == PARQUET else pd.read_csv(
        io.BytesIO(body))
    if returns.type == "dataframe":
        return returns.validate_value(frame)
    arr = frame.to_numpy()
    shape = getattr(returns, "shape", None)
    if shape is not None and len(shape) == 1:
        arr = arr[:, 0]
    return returns.validate_value(arr)
