"""Values of no known schema: turned into JSON-friendly values, and batches of them joined."""

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
        from mlem_lib.data.columns import frame_records, json_values

        if hasattr(obj, "to_dict") and hasattr(obj, "columns"):
            return {"values": frame_records(obj)}
        if hasattr(obj, "dtype") and hasattr(obj, "tolist"):
            values = json_values(obj)
            return values if values is not None else obj.tolist()
        if hasattr(obj, "isoformat"):  # a Timestamp
            return obj.isoformat()
        if hasattr(obj, "tolist"):
            return obj.tolist()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    return str(obj)


def concat_any(parts: list[Any]) -> Any:
    """Join batch results of any kind back into one value of the same kind.

    DataFrames and Series are concatenated by pandas, arrays by numpy, lists are chained;
    a single other value is returned as is, several as a list.

    Example:
        >>> concat_any([[1, 2], [3]]), concat_any([])
        ([1, 2, 3], [])
    """
    if not parts:
        return []
    first = parts[0]
    module = type(first).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    if module == "numpy" and getattr(first, "ndim", 0) > 0:
        import numpy as np

        return np.concatenate(parts)
    if isinstance(first, list):
        return [item for part in parts for item in part]
    if len(parts) == 1:
        return first
    return list(parts)
