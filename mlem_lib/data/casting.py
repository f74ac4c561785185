"""Lossless casts of numpy arrays and pandas columns to a saved dtype.

A leaf module (numpy and our errors only) shared by the array and the column data
types, so that neither has to import the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlem_lib.errors import SchemaError

__all__ = ["coerce_dtype", "field_label", "parse_nonfinite_tokens"]


def field_label(field: str | None) -> str:
    """How an error names the value: the quoted field, or \"array\"."""
    return f"'{field}'" if field else "array"


def coerce_dtype(arr: Any, expected: str, field: str | None) -> Any:
    """Cast a numpy array or pandas Series to ``expected`` when that loses nothing.

    Ints go to floats; floats go to ints only when every value is whole; anything goes
    to object/string columns. Anything else raises :class:`SchemaError`.
    """
    actual = arr.dtype
    if str(actual) == expected:
        return arr
    try:
        target = np.dtype(expected)
    except TypeError:
        # pandas-only dtypes (category, str, Int64...): let pandas cast
        try:
            return arr.astype(expected)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"{field_label(field)}: expected dtype {expected}, got {actual}",
                              field=field, expected=expected, got=str(actual)) from exc
    a, t = getattr(actual, "kind", "O"), target.kind
    if t == "f" and a in "OU":
        parsed = parse_nonfinite_tokens(arr)
        if parsed is not None:
            return parsed.astype(target) if hasattr(parsed, "astype") else parsed
    if t in "US" and a in "US":
        return arr  # the saved width (<U10) is the sample's longest text, not a limit
    if t == "U" and a in "O":
        target = np.dtype(str)  # as wide as the longest value: never truncated
    ok = False
    if t in "OUS":
        ok = a in "OUSb" or t == "O" or str(actual) in ("str", "string")
    elif str(actual) in ("str", "string") or a in "OUS":
        ok = False
    elif t == "c":
        ok = a in "iufc"
    elif t == "f":
        ok = a in "iuf"  # not booleans, not complex numbers (the imaginary part is data)
    elif t in "iu":
        if a in "iu":
            ok = True
        elif a == "f":
            values = np.asarray(arr, dtype=float)
            ok = bool(np.all(np.isfinite(values)) and np.all(np.mod(values, 1) == 0))
    elif t == "b":
        ok = a == "b"
    elif t == "M":
        ok = a == "M"
    if not ok:
        raise SchemaError(f"{field_label(field)}: expected dtype {expected}, got {actual}",
                          field=field, expected=expected, got=str(actual))
    _check_range(arr, target, field)
    return arr.astype(target if t != "O" else object)


def parse_nonfinite_tokens(arr: Any) -> Any:
    """Numbers mixed with JSON's non-finite tokens (``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``) as floats, or None when anything else is there."""
    from mlem_lib.data.media import NONFINITE_TOKENS

    is_series = hasattr(arr, "to_numpy")
    values = arr.to_numpy(dtype=object) if is_series else np.asarray(arr, dtype=object)
    out = np.empty(values.shape, dtype=float)
    flat_in, flat_out = values.ravel(), out.ravel()
    seen_token = False
    for i, v in enumerate(flat_in):
        if isinstance(v, str):
            if v not in NONFINITE_TOKENS:
                return None
            flat_out[i] = NONFINITE_TOKENS[v]
            seen_token = True
        elif isinstance(v, int | float | np.integer | np.floating) and not isinstance(
                v, bool | np.bool_):
            flat_out[i] = v
        else:
            return None
    if not seen_token:
        return None
    if is_series:
        import pandas as pd

        return pd.Series(out, index=arr.index, name=arr.name)
    return out


def _check_range(arr: Any, target: np.dtype[Any], field: str | None) -> None:
    """Refuse values that ``target`` cannot hold: never a wrapped int or an inf from a cast.

    Example:
        >>> _check_range(np.array([1e30]), np.dtype("int64"), "a")
        Traceback (most recent call last):
        ...
        mlem_lib.errors.SchemaError: 'a': value 1e+30 is out of the range of int64
    """
    if arr.dtype == target or arr.size == 0:
        return
    values = np.asarray(arr)
    if target.kind in "iu":
        info = np.iinfo(target)
        if values.dtype.kind == "f":
            bad = (values < float(info.min)) | (values >= float(info.max) + 1.0)
        elif values.dtype.kind in "iu" and (np.iinfo(values.dtype).min < info.min
                                            or np.iinfo(values.dtype).max > info.max):
            bad = (values < info.min) | (values > info.max)
        else:
            return
    elif target.kind == "f" and values.dtype.kind in "iuf":
        finite = np.isfinite(values.astype(float))
        bad = finite & (np.abs(values.astype(float)) > float(np.finfo(target).max))
    else:
        return
    if np.any(bad):
        value = values[bad].flat[0].item()
        raise SchemaError(f"{field_label(field)}: value {value!r} is out of the range of {target}",
                          field=field, expected=str(target), got=repr(value))
