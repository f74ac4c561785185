"""Loading MLEM 0.4 data objects whose value is split over many small artifacts.

MLEM 0.4 writes lists, tuples and dicts with one artifact per leaf
(``0/data``, ``b/1/data``...) and describes how to rebuild them in ``reader``:
``primitive`` leaves hold ``str(value)``; ``array``/``tuple_like``/``list``
readers hold a reader per item and ``dict`` readers one per key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlem_lib.errors import MetadataError


def _primitive(text: str, ptype: str) -> Any:
    if ptype == "bool":
        return text == "True"
    if ptype == "NoneType":
        return None
    converters: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str,
                                                   "complex": complex}
    if ptype not in converters:
        raise MetadataError(f"unknown primitive type {ptype!r} in MLEM data reader")
    return converters[ptype](text)


ReadArtifact = Callable[[str], bytes]


def _read_primitive(reader: dict[str, Any], read_artifact: ReadArtifact, prefix: str) -> Any:
    ptype = (reader.get("data_type") or {}).get("ptype", "str")
    return _primitive(read_artifact(prefix + "data").decode(), ptype)


def _read_items(reader: dict[str, Any], read_artifact: ReadArtifact, prefix: str) -> Any:
    # a list; the object's data type turns it into a tuple where it describes one
    return [read_composite(r, read_artifact, f"{prefix}{i}/")
            for i, r in enumerate(reader.get("readers", []))]


def _read_dict(reader: dict[str, Any], read_artifact: ReadArtifact, prefix: str) -> Any:
    return {key: read_composite(r, read_artifact, f"{prefix}{key}/")
            for key, r in (reader.get("item_readers") or {}).items()}


# MLEM's reader kinds -> how to rebuild their value
_READERS: dict[str, Callable[[dict[str, Any], ReadArtifact, str], Any]] = {
    "primitive": _read_primitive, "array": _read_items, "tuple_like": _read_items,
    "list": _read_items, "tuple": _read_items, "dict": _read_dict}
COMPOSITE_READERS = set(_READERS)


def read_composite(reader: dict[str, Any], read_artifact: ReadArtifact,
                   prefix: str = "") -> Any:
    """Rebuild a value from a MLEM 0.4 ``reader`` tree.

    Args:
        reader: the ``reader`` mapping of the ``.mlem`` file (or a nested one).
        read_artifact: returns the verified bytes of the artifact with that key.
        prefix: the artifact key prefix of this subtree.

    Example:
        >>> files = {"0/data": b"1", "1/data": b"2.5"}
        >>> read_composite({"type": "tuple_like", "readers": [
        ...     {"type": "primitive", "data_type": {"ptype": "int"}},
        ...     {"type": "primitive", "data_type": {"ptype": "float"}}]}, files.__getitem__)
        [1, 2.5]
    """
    kind = reader.get("type")
    read = _READERS.get(kind) if isinstance(kind, str) else None
    if read is None:
        raise MetadataError(f"unsupported MLEM data reader {kind!r}")
    return read(reader, read_artifact, prefix)
