"""Scalars: int, float, str, bool, complex and None."""

from __future__ import annotations

from typing import Any

from mlem_lib.data.base import DataType
from mlem_lib.errors import SchemaError

_PTYPES: dict[str, type] = {
    "int": int, "float": float, "str": str, "bool": bool,
    "complex": complex, "NoneType": type(None),
}
_JSON_SCHEMA: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"}, "float": {"type": "number"}, "str": {"type": "string"},
    "bool": {"type": "boolean"}, "NoneType": {"type": "null"},
    "complex": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
}
_EXAMPLES: dict[str, Any] = {
    "int": 0, "float": 0.0, "str": "", "bool": False, "complex": 0j, "NoneType": None,
}


def is_primitive(obj: Any) -> bool:
    """True for Python scalars and numpy scalars."""
    return bool(obj is None or isinstance(obj, int | float | str | bool | complex))


def _where(field: str | None) -> str:
    return f"'{field}'" if field else "value"


class PrimitiveType(DataType):
    """A single scalar; ``ptype`` is the Python type name, as MLEM writes it."""

    type: str = "primitive"
    ptype: str

    @classmethod
    def infer(cls, obj: Any) -> PrimitiveType | None:
        """``int``, ``float``, ``str``, ``bool``, ``complex`` or ``None``.

        Example:
            >>> PrimitiveType.infer(2.5), PrimitiveType.infer([1])
            (PrimitiveType(type='primitive', ptype='float'), None)
        """
        if not is_primitive(obj):
            return None
        return cls(ptype=type(obj).__name__ if obj is not None else "NoneType")

    def _check(self, obj: Any, field: str | None) -> Any:
        expected = _PTYPES.get(self.ptype)
        if expected is None:
            return obj
        if self.ptype == "float" and isinstance(obj, int) and not isinstance(obj, bool):
            return float(obj)
        if self.ptype == "int" and isinstance(obj, bool):
            pass
        elif isinstance(obj, expected):
            return obj
        if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
            return self._check(obj.item(), field)
        raise SchemaError(
            f"{_where(field)}: expected {self.ptype}, got {type(obj).__name__} ({obj!r:.40})",
            field=field, expected=self.ptype, got=type(obj).__name__,
        )

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        return self._check(obj, field)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        if self.ptype == "complex" and isinstance(payload, list) and len(payload) == 2:
            return complex(payload[0], payload[1])
        if self.ptype == "float" and isinstance(payload, str):
            from mlem_lib.data.media import NONFINITE_TOKENS

            if payload in NONFINITE_TOKENS:  # JSON's spelling of NaN and the infinities
                return NONFINITE_TOKENS[payload]
        return self._check(payload, field)

    def to_json(self, obj: Any) -> Any:
        if isinstance(obj, complex):
            return [obj.real, obj.imag]
        if hasattr(obj, "item"):
            return obj.item()
        return obj

    def example(self) -> Any:
        return _EXAMPLES.get(self.ptype)

    def describe(self) -> str:
        return self.ptype

    def json_schema(self) -> dict[str, Any]:
        return dict(_JSON_SCHEMA.get(self.ptype, {}))
