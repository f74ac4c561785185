"""The base class of data schemas and the registry that finds the right one.

A *data type* describes the values a model method takes or returns. It is
written into the ``.mlem`` file (in MLEM's layout, keyed by ``type``), can
check a Python object against itself, turn JSON into the right object, turn an
object into JSON and make an example value for smoke tests.

Handlers live in one module per kind of data (``primitive``, ``builtin``,
``numpy``, ``pandas``) and are imported only when needed, so reading a
``.mlem`` file never imports pandas.
"""

from __future__ import annotations

import builtins
import importlib
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, SerializeAsAny

from mlem_lib.errors import MetadataError, UnsupportedObjectError

# type name -> module that defines it; imported on first use.
_MODULES: dict[str, str] = {
    "primitive": "mlem_lib.data.primitive",
    "array": "mlem_lib.data.builtin",
    "list": "mlem_lib.data.builtin",
    "tuple": "mlem_lib.data.builtin",
    "dict": "mlem_lib.data.builtin",
    "unspecified": "mlem_lib.data.base",
    "ndarray": "mlem_lib.data.numpy",
    "number": "mlem_lib.data.numpy",
    "dataframe": "mlem_lib.data.pandas",
    "series": "mlem_lib.data.pandas",
}


class DataType(BaseModel):
    """A data schema. Subclasses set ``type`` and implement the methods below."""

    model_config = ConfigDict(extra="allow")

    type: str
    _registry: ClassVar[dict[str, builtins.type[DataType]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        field = cls.model_fields.get("type")
        default = field.default if field is not None else None
        if isinstance(default, str):
            DataType._registry[default] = cls

    # --- what every data type implements ------------------------------------
    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        """Check ``obj`` against the schema; return it, possibly converted.

        Raises:
            SchemaError: naming the field and what was expected.
        """
        raise NotImplementedError

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        """Turn a decoded JSON value into the object the model expects."""
        raise NotImplementedError

    def to_json(self, obj: Any) -> Any:
        """Turn an object of this type into something ``json.dumps`` accepts."""
        raise NotImplementedError

    def example(self) -> Any:
        """A small value that satisfies the schema (used for smoke tests)."""
        raise NotImplementedError

    def batch_free(self) -> DataType:
        """The same schema with the batch axis left free (the default: unchanged)."""
        return self

    def describe(self) -> str:
        """One short line for tables, e.g. ``dataframe[a: float64, b: int64]``."""
        return self.type

    def json_schema(self) -> dict[str, Any]:
        """A JSON schema of the JSON form (used for OpenAPI docs)."""
        return {}

    def requirement_modules(self) -> list[str]:
        """Top-level modules needed to build objects of this type."""
        return []


class UnspecifiedType(DataType):
    """Anything goes: written when no sample data was given."""

    type: str = "unspecified"

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        return obj

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        return payload

    def to_json(self, obj: Any) -> Any:
        from mlem_lib.data.convert import to_jsonable

        return to_jsonable(obj)

    def example(self) -> Any:
        return None


class UnknownDataType(UnspecifiedType):
    """A type written by another tool that this version does not know; fields are kept."""

    type: str = "unknown"


def _import_handlers(type_name: str) -> None:
    module = _MODULES.get(type_name)
    if module is not None:
        importlib.import_module(module)


def parse_data_type(value: Any) -> DataType:
    """Build the right :class:`DataType` subclass from its dict form.

    Example:
        >>> parse_data_type({"type": "primitive", "ptype": "int"}).describe()
        'int'
    """
    if isinstance(value, DataType):
        return value
    if value is None:
        return UnspecifiedType()
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise MetadataError(f"a data type must be a mapping with a 'type' key, got {value!r}")
    name = value["type"]
    _import_handlers(name)
    cls = DataType._registry.get(name)
    if cls is None:
        return UnknownDataType.model_validate(value)
    return cls.model_validate(value)


AnyDataType = Annotated[SerializeAsAny[DataType], BeforeValidator(parse_data_type)]


def infer_data_type(obj: Any) -> DataType:
    """Infer the schema of a Python object.

    Example:
        >>> infer_data_type([1, 2, 3]).describe()
        'list[int]'
    """
    module = type(obj).__module__.split(".")[0]
    if module == "pandas":
        from mlem_lib.data import pandas as pd_types

        return pd_types.infer(obj)
    if module == "numpy":
        from mlem_lib.data import numpy as np_types

        return np_types.infer(obj)
    from mlem_lib.data import builtin, primitive

    if primitive.is_primitive(obj):
        return primitive.PrimitiveType.infer(obj)
    if isinstance(obj, list | tuple | dict):
        return builtin.infer(obj)
    raise UnsupportedObjectError(
        f"cannot infer a data schema for an object of type {type(obj).__module__}."
        f"{type(obj).__qualname__}"
    )


def is_data(obj: Any) -> bool:
    """True for values mlem_lib can describe as data (not models)."""
    try:
        infer_data_type(obj)
    except UnsupportedObjectError:
        return False
    return True
