"""numpy arrays (``ndarray``) and numpy scalars (``number``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlem_lib.data import media
from mlem_lib.data.base import DataType
from mlem_lib.data.casting import coerce_dtype, field_label, parse_nonfinite_tokens
from mlem_lib.errors import SchemaError

_JSON_KIND = {"f": "number", "i": "integer", "u": "integer", "b": "boolean",
              "U": "string", "S": "string", "O": "string"}


def _has_bool(payload: Any) -> bool:
    """Whether a nested list holds a JSON true/false (numpy would read it as 1 or 0)."""
    if isinstance(payload, bool):
        return True
    if isinstance(payload, list):
        if payload and not isinstance(payload[0], list):
            return any(type(v) is bool for v in payload)
        return any(_has_bool(v) for v in payload)
    return False


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
        self.check_shape(arr, field)
        return coerce_dtype(arr, self.dtype, field)

    def check_shape(self, arr: Any, field: str | None = None) -> None:
        """Check the shape of anything with ``ndim`` and ``shape`` (arrays, tensors).

        Raises:
            SchemaError: naming the axis and the expected shape.
        """
        if arr.ndim != len(self.shape):
            raise SchemaError(
                f"{field_label(field)}: expected {len(self.shape)} dimensions "
                f"(shape {self._shape_str()}), got shape {tuple(arr.shape)}",
                field=field, expected=f"shape {self._shape_str()}", got=str(tuple(arr.shape)))
        for axis, (want, got) in enumerate(zip(self.shape, arr.shape, strict=True)):
            if want is not None and want != got:
                raise SchemaError(
                    f"{field_label(field)}: expected shape {self._shape_str()}, got "
                    f"{tuple(arr.shape)} (axis {axis} must be {want})",
                    field=field, expected=f"shape {self._shape_str()}",
                    got=str(tuple(arr.shape)))

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
            raise SchemaError(f"{field_label(field)}: expected a nested list with shape "
                              f"{self._shape_str()}, got {type(payload).__name__}",
                              field=field, expected=f"shape {self._shape_str()}",
                              got=type(payload).__name__)
        try:
            arr = np.asarray(payload)
            if arr.dtype.kind == "U" and np.dtype(self.dtype).kind == "f":
                arr = np.asarray(payload, dtype=object)  # numbers mixed with "NaN" tokens
        except ValueError as exc:
            raise SchemaError(f"{field_label(field)}: rows have different lengths "
                              f"(expected shape {self._shape_str()})", field=field,
                              expected=f"shape {self._shape_str()}", got="ragged list") from exc
        if arr.dtype.kind in "iufc" and np.dtype(self.dtype).kind in "iufc" and _has_bool(payload):
            raise SchemaError(f"{field_label(field)}: expected {self.dtype} numbers, "
                              "got true/false",
                              field=field, expected=self.dtype, got="bool")
        if arr.dtype == object and arr.ndim and np.dtype(self.dtype).kind == "f":
            parsed = parse_nonfinite_tokens(arr)
            if parsed is not None:
                arr = parsed
        if arr.dtype == object and arr.ndim and self.dtype != "object":
            raise SchemaError(f"{field_label(field)}: rows have different lengths or mixed types "
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

    # --- formats: JSON (nested lists), CSV and Parquet (rows of values), .npy --------
    def media_types(self) -> tuple[str, ...]:
        return media.tabular()

    def binary_media_type(self, value: Any = None) -> str | None:
        dtype = getattr(value, "dtype", None)
        if not isinstance(dtype, np.dtype):
            try:
                dtype = np.dtype(self.dtype)
            except TypeError:
                return None
        return media.NPY if dtype.kind in "biuf" else None

    def csv_read_options(self) -> dict[str, Any]:
        """Arrays of strings read their CSV cells as text: ``007`` stays ``"007"``."""
        try:
            text = np.dtype(self.dtype).kind in "OUS"
        except TypeError:
            return {}
        return {"dtype": "str", "keep_default_na": False, "na_values": [""]} if text else {}

    def from_chunk(self, chunk: Any) -> Any:
        """An array from a chunk; a 1-D array takes a table's only column (``apply
        --column`` picks one of many)."""
        if len(self.shape) == 1 and type(chunk).__name__ == "DataFrame":
            from mlem_lib.data.pandas import one_column

            chunk = one_column(chunk).to_numpy()
        return super().from_chunk(chunk)

    def _rows_of_values(self, arr: Any) -> Any:
        """A table of values read from CSV or Parquet, as a 1-D array when the schema is."""
        if len(self.shape) == 1 and arr.ndim == 2 and arr.shape[1] == 1:
            return arr[:, 0]
        return arr

    def decode(self, body: bytes, media_type: str,
               params: Mapping[str, str] | None = None) -> Any:
        """Arrays from nested JSON lists, CSV rows (a header row is skipped), the values of a
        Parquet table, or an ``.npy`` body.

        Example:
            >>> t = NumpyNdarrayType(shape=[None, 2], dtype="float64")
            >>> t.decode(b"a,b\\n1,2\\n", "text/csv").tolist()
            [[1.0, 2.0]]
        """
        if media_type == media.CSV:
            header = media.csv_header_param(params)
            options = self.csv_read_options()
            if options and header is None:
                header = True  # text cells cannot tell a header row: pandas writes one
            arr = media.read_csv_values(body, header, options)
            return self.validate_value(self._rows_of_values(arr))
        if media_type == media.PARQUET:
            arr = media.read_parquet(body).to_numpy()
            return self.validate_value(self._rows_of_values(arr))
        if media_type == media.NPY:
            return self.validate_value(media.read_npy(body))
        return super().decode(body, media_type, params)

    # --- batches: rows along the first axis ---------------------------------------
    def is_empty(self, value: Any) -> bool:
        return getattr(value, "ndim", None) != 0 and len(value) == 0

    def concat(self, parts: list[Any]) -> Any:
        """The batches joined along the first axis (an empty array of the schema for none).

        Example:
            >>> t = NumpyNdarrayType(shape=[None, 2], dtype="int64")
            >>> t.concat([np.ones((1, 2), "int64"), np.zeros((1, 2), "int64")]).tolist()
            [[1, 1], [0, 0]]
            >>> t.concat([]).shape
            (0, 2)
        """
        if not parts:
            inner = [0 if s is None else s for s in self.shape[1:]]
            return np.empty((0, *inner), dtype=self.dtype)
        return np.concatenate(parts)


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
            raise SchemaError(f"{field_label(field)}: expected a single {self.dtype} number",
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
