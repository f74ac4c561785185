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

COMPOSITE_READERS = {"primitive", "array", "tuple_like", "list", "tuple", "dict"}


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


def read_composite(reader: dict[str, Any], read_artifact: Callable[[str], bytes],
                   prefix: str = "") -> Any:
    """Rebuild a value from a MLEM 0.4 ``reader`` tree.

    Args:
        reader: the ``reader`` mapping of the ``.mlem`` file (or a nested one).
        read_artifact: returns the verified bytes of the artifact with that key.
        prefix: the artifact key prefix of this subtree.
    """
    kind = reader.get("type")
    if kind == "primitive":
        ptype = (reader.get("data_type") or {}).get("ptype", "str")
        return _primitive(read_artifact(prefix + "data").decode(), ptype)
    if kind in ("array", "tuple_like", "list", "tuple"):
        items = [read_composite(r, read_artifact, f"{prefix}{i}/")
                 for i, r in enumerate(reader.get("readers", []))]
        return tuple(items) if (reader.get("data_type") or {}).get("type") == "tuple" else items
    if kind == "dict":
        return {key: read_composite(r, read_artifact, f"{prefix}{key}/")
                for key, r in (reader.get("item_readers") or {}).items()}
    raise MetadataError(f"unsupported MLEM data reader {kind!r}")
