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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SerializeAsAny

from mlem_lib import plugins
from mlem_lib.data import media
from mlem_lib.errors import HTTPProblem, MetadataError, UnsupportedObjectError

if TYPE_CHECKING:
    from mlem_lib.formats import Source


class DataType(BaseModel):
    """A data schema. Subclasses set ``type`` and implement the methods below.

    Besides describing and checking values, a data type owns the formats its values
    travel in, so that the server, the client, ``apply`` and the sinks never ask which
    type they hold:

    * over HTTP: :meth:`media_types` it speaks (the server advertises and negotiates only
      those), :meth:`decode` a body and :meth:`encode` a value in each, the JSON schema of
      its JSON form and an OpenAPI schema of its other bodies, and the binary media type
      big batches should use (:meth:`binary_media_type`);
    * in batches: turning a chunk read from a file into a checked batch
      (:meth:`from_chunk`), counting its rows (:meth:`rows`, :meth:`is_empty`), joining the
      results of many batches (:meth:`concat`), and, for files no generic reader knows
      (images, audio), reading them itself (:meth:`open_source`).

    The defaults speak JSON only and treat batches generically; subclasses override
    what they do better. A new data type is one module defining a subclass, plus one
    registration line (see :mod:`mlem_lib.plugins`).
    """

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
        """A JSON schema of the JSON form :meth:`to_json` writes (used for OpenAPI docs)."""
        return {}

    def requirement_modules(self) -> list[str]:
        """Top-level modules needed to build objects of this type."""
        return []

    def mlem_dump(self) -> dict[str, Any]:
        """This schema in MLEM 0.4's layout, for MLEM's own client (``/interface.json``).

        MLEM refuses fields it does not know; types that add some leave them out here.
        """
        return self.model_dump(mode="json", exclude_none=False)

    # --- formats over HTTP ------------------------------------------------------
    def media_types(self) -> tuple[str, ...]:
        """The media types values of this type travel in, both ways; JSON comes first.

        The server accepts request bodies and answers (by ``Accept``) only in these, and
        lists them in its OpenAPI document.

        Example:
            >>> UnspecifiedType().media_types()[:2]
            ('application/json', 'text/csv')
        """
        return (media.JSON,)

    def binary_media_type(self, value: Any = None) -> str | None:
        """The media type big batches of this type should travel in, if not JSON.

        Args:
            value: the batch about to be sent, when there is one (a type may prefer JSON
                for some values, e.g. arrays of Python objects).
        """
        return None

    def input_json_schema(self) -> dict[str, Any]:
        """A JSON schema of everything :meth:`from_json` accepts (default: :meth:`json_schema`)."""
        return self.json_schema()

    def body_schema(self, media_type: str) -> dict[str, Any]:
        """The OpenAPI schema of a body in one of :meth:`media_types` other than JSON."""
        return media.body_schema(media_type)

    def decode(self, body: bytes, media_type: str,
               params: Mapping[str, str] | None = None) -> Any:
        """Turn a body in ``media_type`` into a checked value of this type.

        Args:
            body: the raw bytes of a request (on the server) or a response (in the client).
            media_type: one of :meth:`media_types`, without parameters.
            params: the Content-Type's parameters (``charset``, ``header``, ``boundary``...).

        Raises:
            SchemaError: the body does not hold a value of this type.
            HTTPProblem: 400 for an empty or malformed body, 415 for a media type this type
                does not read.

        Example:
            >>> from mlem_lib.data.primitive import PrimitiveType
            >>> PrimitiveType(ptype="int").decode(b"3", "application/json")
            3
        """
        if media_type == media.JSON:
            dtype = self.json_matrix_dtype() if len(body) >= media.MATRIX_MIN_BYTES else None
            found = media.loads_json_matrix(body, dtype) if dtype else None
            if found is not None:
                value = self.from_matrix(*found)
                if value is not None:
                    return value
            return self.from_json(media.loads_json(body))
        raise self._unsupported(media_type, 415, "Content-Type")

    def json_matrix_dtype(self) -> str | None:
        """``"float64"`` or ``"int64"`` when this type's JSON values may hold a big matrix of
        numbers that :meth:`from_matrix` can take as an array (see
        :func:`~mlem_lib.data.media.loads_json_matrix`); None (the default) when not."""
        return None

    def from_matrix(self, payload: Any, values: Any) -> Any:
        """The checked value of a JSON payload whose matrix was read as the array ``values``
        (:func:`~mlem_lib.data.media.is_matrix` marks its place in ``payload``), or None
        when the payload is not a layout this shortcut takes: then the caller parses the
        whole body as usual, which also words any error.
        """
        return None

    def encode(self, value: Any, media_type: str) -> bytes:
        """The body of ``value`` in ``media_type`` (one of :meth:`media_types`).

        The default writes JSON with :meth:`to_json`, and CSV, Parquet or ``.npy`` when the
        type lists them, through the generic writers of :mod:`mlem_lib.data.media`.

        Raises:
            HTTPProblem: 406 when the value cannot be written in that media type.

        Example:
            >>> UnspecifiedType().encode([1, 2], "text/csv")
            b'1\\n2\\n'
        """
        if media_type == media.JSON:
            return media.dumps_json(value, self.to_json)
        if media_type in self.media_types():
            if media_type == media.NPY:
                return media.write_npy(value)
            if media_type in (media.CSV, media.PARQUET):
                return media.write_table(value, media_type)
        raise self._unsupported(media_type, 406, "Accept")

    def _unsupported(self, media_type: str, status: int, header: str) -> HTTPProblem:
        supported = self.media_types()
        verb = "read from" if status == 415 else "written as"
        return HTTPProblem(status, f"{self.describe()} values cannot be {verb} {media_type}; "
                                   f"use {', '.join(supported)}", field=header,
                           expected=" or ".join(supported), got=media_type)

    # --- batches ----------------------------------------------------------------
    def rows(self, value: Any) -> int | None:
        """The number of rows of a batch (``None`` when the value is not a batch).

        Example:
            >>> UnspecifiedType().rows([1, 2, 3]), UnspecifiedType().rows(7)
            (3, None)
        """
        shape = getattr(value, "shape", None)
        if shape is not None:
            return int(shape[0]) if len(shape) else None
        if isinstance(value, list | tuple):
            return len(value)
        return None

    def is_empty(self, value: Any) -> bool:
        """True for a batch of zero rows, which the server refuses before calling the model.

        The default says no: only types that are batches of rows (tables, arrays) say yes.
        """
        return False

    def input_columns(self) -> list[str] | None:
        """The columns of a table this type reads (``None``: whatever it is given).

        ``apply --keep-columns`` drops the kept input columns the model does not read.
        """
        return None

    def csv_read_options(self) -> dict[str, Any]:
        """Options for ``pandas.read_csv`` that read a CSV of values of this type exactly
        (which columns are text, which cells are missing); ``apply`` and the server use
        them for every CSV input. The default: pandas' own guesses."""
        return {}

    def from_chunk(self, chunk: Any) -> Any:
        """A checked batch of this type from a chunk that ``apply`` read from a file.

        Chunks are what :mod:`mlem_lib.formats` sources yield: a DataFrame (CSV, Parquet),
        an ndarray (``.npy``), a list of JSON values (JSON Lines), or what this type's own
        :meth:`open_source` yields. The default takes JSON Lines objects as rows of a table.

        Raises:
            SchemaError: naming the missing or mistyped column.
        """
        if isinstance(chunk, list) and chunk and isinstance(chunk[0], dict):
            import pandas as pd

            chunk = pd.DataFrame.from_records(chunk)
        return self.validate_value(chunk)

    def concat(self, parts: list[Any]) -> Any:
        """Join the results of many batches into one value, in order.

        Example:
            >>> UnspecifiedType().concat([[1, 2], [3]])
            [1, 2, 3]
        """
        from mlem_lib.data.convert import concat_any

        return concat_any(parts)

    def open_source(self, url: str) -> Source | None:
        """A reader for files of this type that the generic readers do not know, else ``None``.

        ``apply`` asks the argument's type first, so a type of images or audio can read
        ``images/*.png`` or ``clip.wav`` itself (one row per file).
        """
        return None


class UnspecifiedType(DataType):
    """Anything goes: written when no sample data was given.

    Values travel as JSON, CSV, Parquet or ``.npy``, converted generically.
    """

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

    def media_types(self) -> tuple[str, ...]:
        return media.tabular()

    def binary_media_type(self, value: Any = None) -> str | None:
        if type(value).__name__ == "DataFrame":
            return media.PARQUET if media.parquet_available() else None
        ndim: int = getattr(value, "ndim", 0)
        if type(value).__module__ == "numpy" and ndim > 0 and value.dtype.kind in "biuf":
            return media.NPY
        return None

    def decode(self, body: bytes, media_type: str,
               params: Mapping[str, str] | None = None) -> Any:
        if media_type == media.CSV:
            header = media.csv_header_param(params)
            return media.read_csv(media.csv_text(body), header=header is not False)
        if media_type == media.PARQUET:
            return media.read_parquet(body)
        if media_type == media.NPY:
            return media.read_npy(body)
        return super().decode(body, media_type, params)


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
