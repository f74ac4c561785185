"""Python containers: lists (MLEM's ``array`` and ``list``), tuples and dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlem_lib.data import media
from mlem_lib.data.base import AnyDataType, DataType, UnspecifiedType, infer_data_type
from mlem_lib.errors import SchemaError


def _sub(field: str | None, key: object) -> str:
    return f"{field}[{key!r}]" if field else f"[{key!r}]"


def _require(obj: Any, kind: type | tuple[type, ...], name: str, field: str | None) -> None:
    if not isinstance(obj, kind):
        where = f"'{field}'" if field else "value"
        raise SchemaError(f"{where}: expected {name}, got {type(obj).__name__}",
                          field=field, expected=name, got=type(obj).__name__)


class ArrayType(DataType):
    """A homogeneous list: every item has type ``dtype``; ``size`` is ``None`` when free."""

    type: str = "array"
    dtype: AnyDataType
    size: int | None = None

    def _check_size(self, obj: list[Any] | tuple[Any, ...], field: str | None) -> None:
        if self.size is not None and len(obj) != self.size:
            where = f"'{field}'" if field else "list"
            raise SchemaError(f"{where}: expected length {self.size}, got {len(obj)}",
                              field=field, expected=f"length {self.size}", got=str(len(obj)))

    def _scalar_items(self) -> str | None:
        """The item type when it is a scalar (``str``, ``int``...): such lists also come as
        a Series, a 1-D array or a one-column table."""
        ptype = getattr(self.dtype, "ptype", None)
        return ptype if ptype in ("str", "int", "float", "bool") else None

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        """Check a list; a list of scalars may also be given as a pandas Series, a 1-D numpy
        array or a one-column DataFrame (a text model applied to a CSV's ``text`` column).

        Example:
            >>> import numpy as np, pandas as pd
            >>> from mlem_lib.data.primitive import PrimitiveType
            >>> texts = ArrayType(dtype=PrimitiveType(ptype="str"))
            >>> texts.validate_value(np.array(["good", "bad"])), texts.validate_value(
            ...     pd.DataFrame({"text": ["fine"]}))
            (['good', 'bad'], ['fine'])
        """
        if not isinstance(obj, list | tuple) and self._scalar_items() is not None:
            obj = _as_list(obj, field)
        _require(obj, (list, tuple), "a list", field)
        self._check_size(obj, field)
        return [self.dtype.validate_value(v, _sub(field, i)) for i, v in enumerate(obj)]

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        _require(payload, list, "a list", field)
        self._check_size(payload, field)
        return [self.dtype.from_json(v, _sub(field, i)) for i, v in enumerate(payload)]

    def to_json(self, obj: Any) -> Any:
        return [self.dtype.to_json(v) for v in obj]

    def example(self) -> Any:
        return [self.dtype.example() for _ in range(self.size or 1)]

    def batch_free(self) -> DataType:
        return self.model_copy(update={"size": None})

    def describe(self) -> str:
        size = "" if self.size is None else f", {self.size}"
        return f"list[{self.dtype.describe()}{size}]"

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": self.dtype.json_schema()}
        if self.size is not None:
            schema["minItems"] = schema["maxItems"] = self.size
        return schema

    def requirement_modules(self) -> list[str]:
        return self.dtype.requirement_modules()

    # --- formats: JSON; lists of scalars also as a CSV / Parquet column ---------------
    def media_types(self) -> tuple[str, ...]:
        """JSON; lists of numbers also travel as CSV, Parquet or ``.npy``, lists of texts
        or booleans as CSV or Parquet (one column); other lists as JSON only.

        Example:
            >>> from mlem_lib.data.primitive import PrimitiveType
            >>> len(ArrayType(dtype=PrimitiveType(ptype="float")).media_types())
            4
            >>> ArrayType(dtype=PrimitiveType(ptype="str")).media_types()[:2]
            ('application/json', 'text/csv')
            >>> ArrayType(dtype=PrimitiveType(ptype="NoneType")).media_types()
            ('application/json',)
        """
        ptype = self._scalar_items()
        if ptype in ("int", "float"):
            return media.tabular()
        if ptype in ("str", "bool"):  # one column of a CSV or Parquet table
            return tuple(t for t in media.tabular() if t != media.NPY)
        return super().media_types()

    def csv_read_options(self) -> dict[str, Any]:
        """Lists of strings read their CSV cells as text: ``007`` stays ``"007"``."""
        if self._scalar_items() == "str":
            return {"dtype": "str", "keep_default_na": False, "na_values": [""]}
        return {}

    def decode(self, body: bytes, media_type: str,
               params: Mapping[str, str] | None = None) -> Any:
        """A list from JSON; lists of scalars also from one CSV or Parquet column (a CSV of
        strings has a header row, as pandas writes it, unless ``header=absent``), and
        lists of numbers from ``.npy``.

        Example:
            >>> from mlem_lib.data.primitive import PrimitiveType
            >>> ArrayType(dtype=PrimitiveType(ptype="str")).decode(
            ...     b",text\\n0,good film\\n1,007\\n", "text/csv")
            ['good film', '007']
        """
        if media_type not in self.media_types():
            return super().decode(body, media_type, params)
        if self._scalar_items() in ("str", "bool") and media_type in (media.CSV,
                                                                       media.PARQUET):
            if media_type == media.PARQUET:
                return self.from_chunk(media.read_parquet(body))
            text = media.csv_text(body)
            header = media.csv_header_param(params) is not False
            frame = media.read_csv(text, header=header, options=self.csv_read_options(),
                                   names=None if header else [
                                       str(i) for i in range(len(media.csv_first_row(text)))])
            return self.from_chunk(frame)
        if media_type == media.CSV:
            arr = media.read_csv_values(body, media.csv_header_param(params))
        elif media_type == media.PARQUET:
            arr = media.read_parquet(body).to_numpy()
        elif media_type == media.NPY:
            arr = media.read_npy(body)
        else:
            return super().decode(body, media_type, params)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        return self.validate_value(arr.tolist())


    def from_chunk(self, chunk: Any) -> Any:
        """A list from a chunk: a table's only column (``apply --column`` picks one of
        many), or the values of a JSON Lines file."""
        if isinstance(chunk, list) and chunk and isinstance(chunk[0], dict) and \
                self._scalar_items() is not None:
            import pandas as pd

            chunk = pd.DataFrame.from_records(chunk)
        return self.validate_value(chunk)


def _as_list(obj: Any, field: str | None) -> Any:
    """The values of a Series, a 1-D (or one-column) array or a one-column table as a list;
    anything else unchanged."""
    if type(obj).__name__ == "DataFrame":
        from mlem_lib.data.pandas import one_column

        return _as_list(one_column(obj), field)
    if type(obj).__name__ == "Series":
        return [None if v is None or (isinstance(v, float) and v != v) else v
                for v in obj.tolist()]
    ndim = getattr(obj, "ndim", None)
    if ndim is not None and type(obj).__module__ == "numpy":
        if ndim == 2 and obj.shape[1] == 1:
            obj = obj[:, 0]
        if obj.ndim == 1:
            return obj.tolist()
    return obj


class ListType(DataType):
    """A list whose items have different types, one schema per position."""

    type: str = "list"
    items: list[AnyDataType]

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """A list: homogeneous ones become :class:`ArrayType`, mixed ones ``list``.

        Example:
            >>> ListType.infer([1, 2.5]).describe(), ListType.infer([1, "a"]).describe()
            ('list[float, 2]', 'list[int, str]')
        """
        if not isinstance(obj, list):
            return None
        items = [infer_data_type(v) for v in obj]
        if items and all(i == items[0] for i in items[1:]):
            return ArrayType(dtype=items[0], size=len(obj))
        if not items:
            return ArrayType(dtype=UnspecifiedType(), size=0)
        # mixed int/float lists are common for numeric batches: treat them as float arrays
        from mlem_lib.data.primitive import PrimitiveType

        ptypes = {getattr(i, "ptype", None) for i in items}
        if ptypes <= {"int", "float"} and all(isinstance(i, PrimitiveType) for i in items):
            return ArrayType(dtype=PrimitiveType(ptype="float"), size=len(obj))
        return cls(items=items)

    def _check(self, obj: Any, field: str | None, decode: bool) -> list[Any]:
        _require(obj, (list, tuple), "a list", field)
        if len(obj) != len(self.items):
            where = f"'{field}'" if field else "list"
            raise SchemaError(f"{where}: expected length {len(self.items)}, got {len(obj)}",
                              field=field, expected=f"length {len(self.items)}",
                              got=str(len(obj)))
        out = []
        for i, (t, v) in enumerate(zip(self.items, obj, strict=True)):
            out.append(t.from_json(v, _sub(field, i)) if decode
                       else t.validate_value(v, _sub(field, i)))
        return out

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        return self._check(obj, field, decode=False)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        return self._check(payload, field, decode=True)

    def to_json(self, obj: Any) -> Any:
        return [t.to_json(v) for t, v in zip(self.items, obj, strict=True)]

    def example(self) -> Any:
        return [t.example() for t in self.items]

    def batch_free(self) -> DataType:
        """Each item with its batch axis free (a tuple of batches, e.g. tensors)."""
        return self.model_copy(update={"items": [t.batch_free() for t in self.items]})

    def describe(self) -> str:
        return "list[" + ", ".join(t.describe() for t in self.items) + "]"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "array", "prefixItems": [t.json_schema() for t in self.items],
                "minItems": len(self.items), "maxItems": len(self.items)}

    def requirement_modules(self) -> list[str]:
        return [m for t in self.items for m in t.requirement_modules()]


class TupleType(ListType):
    """A tuple, one schema per position; travels as a JSON list."""

    type: str = "tuple"

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """A tuple, one schema per position.

        Example:
            >>> TupleType.infer((1, "a")).describe()
            'tuple[int, str]'
        """
        if not isinstance(obj, tuple):
            return None
        return cls(items=[infer_data_type(v) for v in obj])

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        return tuple(super().validate_value(obj, field))

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        return tuple(super().from_json(payload, field))

    def describe(self) -> str:
        return "tuple[" + ", ".join(t.describe() for t in self.items) + "]"


class DictType(DataType):
    """A dict with known keys, one schema per key."""

    type: str = "dict"
    item_types: dict[str, AnyDataType]

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """A dict, one schema per key (keys are written as strings).

        Example:
            >>> DictType.infer({"a": 1}).describe()
            'dict{a: int}'
        """
        if not isinstance(obj, dict):
            return None
        return cls(item_types={str(k): infer_data_type(v) for k, v in obj.items()})

    def _check(self, obj: Any, field: str | None, decode: bool) -> dict[str, Any]:
        _require(obj, dict, "an object (dict)", field)
        keys = {str(k): k for k in obj}
        missing = [k for k in self.item_types if k not in keys]
        if missing:
            name = _sub(field, missing[0]) if field else missing[0]
            raise SchemaError(f"missing key '{missing[0]}' (expected keys: "
                              f"{', '.join(self.item_types)})",
                              field=name, expected=f"key {missing[0]!r}", got="missing")
        unknown = [k for k in keys if k not in self.item_types]
        if unknown:
            name = _sub(field, unknown[0]) if field else unknown[0]
            raise SchemaError(f"unknown key '{unknown[0]}' (expected keys: "
                              f"{', '.join(self.item_types)})",
                              field=name, expected=f"one of {list(self.item_types)}",
                              got=f"key {unknown[0]!r}")
        out = {}
        for key, t in self.item_types.items():
            value = obj[keys[key]]
            sub = f"{field}.{key}" if field else key
            out[keys[key]] = t.from_json(value, sub) if decode else t.validate_value(value, sub)
        return out

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        return self._check(obj, field, decode=False)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        return self._check(payload, field, decode=True)

    def to_json(self, obj: Any) -> Any:
        return {str(k): self.item_types[str(k)].to_json(v) if str(k) in self.item_types
                else v for k, v in obj.items()}

    def example(self) -> Any:
        return {k: t.example() for k, t in self.item_types.items()}

    def describe(self) -> str:
        return "dict{" + ", ".join(f"{k}: {t.describe()}" for k, t in self.item_types.items()) + "}"

    def batch_free(self) -> DataType:
        """A dict of batches (a model returning several outputs) has each batch axis free."""
        return self.model_copy(update={"item_types": {k: t.batch_free() for k, t in
                                                      self.item_types.items()}})

    def rows(self, value: Any) -> int | None:
        """The rows of a dict of equally long batches (``{"label": [...], "score": [...]}``).

        Example:
            >>> from mlem_lib.data.base import UnspecifiedType
            >>> t = DictType(item_types={"a": UnspecifiedType(), "b": UnspecifiedType()})
            >>> t.rows({"a": [1, 2], "b": [3, 4]}), t.rows({"a": [1], "b": [3, 4]})
            (2, None)
        """
        if not isinstance(value, dict) or not value:
            return None
        counts = {self.item_types[str(k)].rows(v) if str(k) in self.item_types
                  else UnspecifiedType().rows(v) for k, v in value.items()}
        return counts.pop() if len(counts) == 1 else None

    def concat(self, parts: list[Any]) -> Any:
        """The batches of each key joined in order: the dict a single call would return.

        Example:
            >>> from mlem_lib.data.base import UnspecifiedType
            >>> t = DictType(item_types={"a": UnspecifiedType()})
            >>> t.concat([{"a": [1, 2]}, {"a": [3]}])
            {'a': [1, 2, 3]}
        """
        if not parts or not all(isinstance(p, dict) for p in parts):
            return super().concat(parts)
        by_name = [{str(k): v for k, v in p.items()} for p in parts]
        return {key: t.concat([p[key] for p in by_name]) for key, t in self.item_types.items()}

    def json_schema(self) -> dict[str, Any]:
        return {"type": "object",
                "properties": {k: t.json_schema() for k, t in self.item_types.items()},
                "required": list(self.item_types), "additionalProperties": False}

    def requirement_modules(self) -> list[str]:
        return [m for t in self.item_types.values() for m in t.requirement_modules()]
