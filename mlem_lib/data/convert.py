"""Turning arbitrary results into JSON-friendly values (used where no schema is known)."""

from __future__ import annotations

from typing import Any


def to_jsonable(obj: Any) -> Any:
    """Best-effort conversion of numpy/pandas objects and containers to JSON values.

    Example:
        >>> to_jsonable({"a": (1, 2)})
        {'a': [1, 2]}
    """
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    module = type(obj).__module__.split(".")[0]
    if module == "pandas":
        if hasattr(obj, "to_dict") and hasattr(obj, "columns"):
            return {"values": obj.to_dict("records")}
        if hasattr(obj, "tolist"):
            return obj.tolist()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    return str(obj)
