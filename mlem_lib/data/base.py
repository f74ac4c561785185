"""The base class of data schemas, and finding the right one through the plugin seam.

A *data type* describes the values a model method takes or returns. It is
written into the ``.mlem`` file (in MLEM's layout, keyed by ``type``), can
check a Python object against itself, turn JSON into the right object, turn an
object into JSON and make an example value for smoke tests.

Data types are plugins of the ``data`` group (:mod:`mlem_lib.plugins`): one
module per kind of data (``primitive``, ``builtin``, ``numpy``, ``pandas``),
registered by one line in :data:`mlem_lib.plugins.BUILTINS` (or an entry point
in ``mlem_lib.data`` for a third-party package). A ``.mlem`` file is parsed by
looking its ``type`` up there, and a Python object is described by asking each
candidate class's :meth:`DataType.infer`; modules are imported only when
needed, so reading a ``.mlem`` file never imports pandas.

Example:
    >>> infer_data_type({"a": 1.5}).describe()
    'dict{a: float}'
    >>> parse_data_type({"type": "someone_elses", "x": 1}).model_dump()
    {'type': 'someone_elses', 'x': 1}
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SerializeAsAny

from mlem_lib import plugins
from mlem_lib.errors import MetadataError, UnsupportedObjectError


class DataType(BaseModel):
    """A data schema. Subclasses set ``type`` and implement the methods below."""

    model_config = ConfigDict(extra="allow")

    type: str

    # --- what every data type implements ------------------------------------
    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """The schema of ``obj`` when this class describes it, else ``None``.

        :func:`infer_data_type` asks the candidates of :func:`mlem_lib.plugins.candidates`
        in turn; the first that answers wins.
        """
        return None

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


def parse_data_type(value: Any) -> DataType:
    """Build the right :class:`DataType` subclass from its dict form.

    The class is the ``data`` plugin registered under the ``type`` name; a name nobody
    registered becomes an :class:`UnknownDataType` that keeps every field, so a file
    written by a newer tool or another plugin set is read and written back unchanged.

    Raises:
        MetadataError: the value is not a mapping with a ``type`` key.
        PluginError: the type's plugin is registered but cannot be imported.

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
    plugin = plugins.find("data", value["type"])
    if plugin is None:
        return UnknownDataType.model_validate(value)
    cls: type[DataType] = plugins.get("data", plugin.name)
    return cls.model_validate(value)


AnyDataType = Annotated[SerializeAsAny[DataType], BeforeValidator(parse_data_type)]


def infer_data_type(obj: Any) -> DataType:
    """Infer the schema of a Python object.

    Each data plugin that may recognise ``obj`` (:func:`mlem_lib.plugins.candidates`:
    those claiming a module of its class first) is asked through its ``infer``
    classmethod; the first schema returned wins.

    Raises:
        UnsupportedObjectError: no data type describes ``obj``.

    Example:
        >>> infer_data_type([1, 2, 3]).describe()
        'list[int, 3]'
    """
    for candidate in plugins.candidates("data", obj):
        found = candidate.infer(obj)
        if found is not None:
            return found
    raise UnsupportedObjectError(
        f"cannot infer a data schema for an object of type {type(obj).__module__}."
        f"{type(obj).__qualname__}"
    )


def is_data(obj: Any) -> bool:
    """True for values mlem_lib can describe as data (not models).

    Example:
        >>> is_data({"a": [1, 2]}), is_data(print)
        (True, False)
    """
    try:
        infer_data_type(obj)
    except UnsupportedObjectError:
        return False
    return True
