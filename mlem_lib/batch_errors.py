"""Errors of batch prediction that say where: the file, the row and the column.

``mlem apply`` reads a file in chunks; a schema error or a model exception is about
one chunk. These helpers turn it into one line naming the input, the first bad row
(counted from 1 over the whole input, header not counted) and the column.

Example:
    >>> import pandas as pd
    >>> from mlem_lib.errors import SchemaError
    >>> chunk = pd.DataFrame({"a": ["1.5", "2", "abc"]})
    >>> err = SchemaError("column 'a': expected dtype float64, got object", field="a",
    ...                   expected="float64", got="object")
    >>> print(locate_schema_error(err, chunk, offset=10, label="data.csv"))
    data.csv, row 13, column 'a' (value 'abc'): expected dtype float64, got object
"""

from __future__ import annotations

import re
from typing import Any

from mlem_lib.errors import ModelCallError, SchemaError

_NUMBER_KINDS = "iuf"


def _is_number(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _parses(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _column(chunk: Any, column: str) -> list[Any] | None:
    """The values of ``column`` in a DataFrame or a list of row objects (JSON Lines)."""
    if hasattr(chunk, "columns"):
        return chunk[column].tolist() if column in chunk.columns else None
    if isinstance(chunk, list) and chunk and all(isinstance(r, dict) for r in chunk):
        return [r.get(column) for r in chunk] if any(column in r for r in chunk) else None
    return None


def _first_bad_row(values: list[Any], expected: str | None) -> int | None:
    """Position of the first value that cannot be of dtype ``expected``."""
    import numpy as np

    if not expected:
        return None
    try:
        kind = np.dtype(expected).kind
    except TypeError:
        return None
    if kind in _NUMBER_KINDS:
        tests = [lambda v: _is_number(v) or _parses(v) or v is None, _is_number]
    elif kind == "b":
        tests = [lambda v: isinstance(v, bool | np.bool_)]
    else:
        return None
    for ok in tests:
        for i, v in enumerate(values):
            if not ok(v):
                return i
    return None


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def locate_schema_error(exc: SchemaError, chunk: Any, offset: int, label: str | None
                        ) -> SchemaError:
    """The same error, its message prefixed with the input, the row and the column.

    Args:
        exc: the error of validating ``chunk``.
        chunk: the rows read (a DataFrame, array or list).
        offset: rows of the input before this chunk.
        label: the input's name (a path or URL), if any.
    """
    where = [label] if label else []
    message = str(exc)
    values = _column(chunk, exc.field) if exc.field is not None else None
    if values is not None:
        row = exc.row if exc.row is not None else _first_bad_row(values, exc.expected)
        message = re.sub(r" \(row \d+\)$", "", message)  # the row within the chunk
        if row is not None:
            where.append(f"row {offset + row + 1}, column '{exc.field}' "
                         f"(value {_short(values[row])})")
            message = re.sub(rf"^(column )?'{re.escape(str(exc.field))}': ", "", message)
        else:
            where.append(f"rows {offset + 1}-{offset + len(values)}")
    if not where:
        return exc
    located = SchemaError(f"{', '.join(where)}: {message}", field=exc.field,
                          expected=exc.expected, got=exc.got)
    return located


def model_call_error(exc: BaseException, offset: int, rows: int | None, label: str | None
                     ) -> ModelCallError:
    """One line for an exception the model raised on a chunk: where, then its message."""
    span = f"rows {offset + 1}-{offset + rows}" if rows else "the input"
    where = f"{label}, {span}" if label else span
    text = " ".join(str(exc).split()) or "(no message)"
    if len(text) > 500:
        text = text[:497] + "..."
    return ModelCallError(f"the model raised {type(exc).__name__} on {where}: {text}")
