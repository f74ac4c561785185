"""numpy arrays (``ndarray``) and numpy scalars (``number``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlem_lib.data.base import DataType
from mlem_lib.errors import SchemaError

_JSON_KIND = {"f": "number", "i": "integer", "u": "integer", "b": "boolean",
              "U": "string", "S": "string", "O": "string"}


def _where(field: str | None) -> str:
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
            raise SchemaError(f"{_where(field)}: expected dtype {expected}, got {actual}",
                              field=field, expected=expected, got=str(actual)) from exc
    a, t = getattr(actual, "kind", "O"), target.kind
    ok = False
    if t in "OUS":
        ok = a in "OUSb" or t == "O" or str(actual) in ("str", "string")
    elif str(actual) in ("str", "string") or a in "OUS":
        ok = False
    elif t == "f" or t == "c":
        ok = a in "iubfc"
    elif t in "iu":
        if a in "iub":
            ok = True
        elif a == "f":
            values = np.asarray(arr, dtype=float)
            ok = bool(np.all(np.isfinite(values)) and np.all(np.mod(values, 1) == 0))
    elif t == "b":
        ok = a == "b"
    elif t == "M":
        ok = a == "M"
    if not ok:
        raise SchemaError(f"{_where(field)}: expected dtype {expected}, got {actual}",
                          field=field, expected=expected, got=str(actual))
    return arr.astype(target if t != "O" else object)


class NumpyNdarrayType(DataType):
    """An n-dimensional array; ``shape`` uses ``None`` for free axes (the batch axis)."""

    type: str = "ndarray"
    shape: list[int | None]
    dtype: str

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """A numpy array: its shape and dtype.

        Example:
            >>> NumpyNdarrayType.infer(np.zeros((2, 3))).describe()
            'ndarray[float64, (2, 3)]'
        """
        if not isinstance(obj, np.ndarray):
            return None
        return cls(shape=list(obj.shape), dtype=str(obj.dtype))

    def _check(self, arr: Any, field: str | None) -> Any:
        if arr.ndim != len(self.shape):
            raise SchemaError(
                f"{_where(field)}: expected {len(self.shape)} dimensions "
                f"(shape {self._shape_str()}), got shape {tuple(arr.shape)}",
                field=field, expected=f"shape {self._shape_str()}", got=str(tuple(arr.shape)))
        for axis, (want, got) in enumerate(zip(self.shape, arr.shape, strict=True)):
            if want is not None and want != got:
                raise SchemaError(
                    f"{_where(field)}: expected shape {self._shape_str()}, got "
                    f"{tuple(arr.shape)} (axis {axis} must be {want})",
                    field=field, expected=f"shape {self._shape_str()}",
                    got=str(tuple(arr.shape)))
        return coerce_dtype(arr, self.dtype, field)

    def _shape_str(self) -> str:
        return "(" + ", ".join("n" if s is None else str(s) for s in self.shape) + ")"

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        if not isinstance(obj, np.ndarray):
            if hasattr(obj, "to_numpy"):
                obj = obj.to_numpy()
            else:
                return self.from_json(obj, field)
        return self._check(obj, field)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        if isinstance(payload, (dict, str)):
            raise SchemaError(f"{_where(field)}: expected a nested list with shape "
                              f"{self._shape_str()}, got {type(payload).__name__}",
                              field=field, expected=f"shape {self._shape_str()}",
                              got=type(payload).__name__)
        try:
            arr = np.asarray(payload)
        except ValueError as exc:
            raise SchemaError(f"{_where(field)}: rows have different lengths "
                              f"(expected shape {self._shape_str()})", field=field,
                              expected=f"shape {self._shape_str()}", got="ragged list") from exc
        if arr.dtype == object and arr.ndim and self.dtype != "object":
            raise SchemaError(f"{_where(field)}: rows have different lengths or mixed types "
                              f"(expected shape {self._shape_str()}, dtype {self.dtype})",
                              field=field, expected=f"shape {self._shape_str()}",
                              got="ragged or mixed list")
        return self._check(arr, field)

    def to_json(self, obj: Any) -> Any:
        return np.asarray(obj).tolist()

    def example(self) -> Any:
        shape = [1 if s is None else s for s in self.shape]
        return np.zeros(shape, dtype=self.dtype)

    def batch_free(self) -> DataType:
        if not self.shape:
            return self
        return self.model_copy(update={"shape": [None, *self.shape[1:]]})

    def describe(self) -> str:
        return f"ndarray[{self.dtype}, {self._shape_str()}]"

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": _JSON_KIND.get(np.dtype(self.dtype).kind, "string")}
        for size in reversed(self.shape):
            schema = {"type": "array", "items": schema}
            if size is not None:
                schema["minItems"] = schema["maxItems"] = size
        return schema

    def requirement_modules(self) -> list[str]:
        return ["numpy"]


class NumpyNumberType(DataType):
    """A numpy scalar such as ``np.float64(1.0)``."""

    type: str = "number"
    dtype: str

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """A numpy scalar: its dtype.

        Example:
            >>> NumpyNumberType.infer(np.float32(1)).describe()
            'float32'
        """
        if not isinstance(obj, np.generic):
            return None
        return cls(dtype=str(obj.dtype))

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        return self.from_json(obj, field)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        arr = coerce_dtype(np.asarray(payload), self.dtype, field)
        if arr.ndim:
            raise SchemaError(f"{_where(field)}: expected a single {self.dtype} number",
                              field=field, expected=self.dtype, got="array")
        return arr[()]

    def to_json(self, obj: Any) -> Any:
        return np.asarray(obj).item()

    def example(self) -> Any:
        return np.zeros((), dtype=self.dtype)[()]

    def describe(self) -> str:
        return self.dtype

    def json_schema(self) -> dict[str, Any]:
        return {"type": _JSON_KIND.get(np.dtype(self.dtype).kind, "string")}

    def requirement_modules(self) -> list[str]:
        return ["numpy"]
