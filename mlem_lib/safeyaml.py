"""Reading ``.mlem`` YAML safely: size limits and a guard against alias expansion.

A leaf module (only :mod:`mlem_lib.errors`), so that both :mod:`mlem_lib.mlemfile` and
:mod:`mlem_lib.compat.links` use it without importing each other.

Example:
    >>> _yaml_load("a: 1")
    {'a': 1}
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from mlem_lib.errors import MetadataError, MetadataTooLargeError

MAX_METADATA_BYTES = 32 * 1024 * 1024
"""A ``.mlem`` file larger than this is refused before it is read."""
MAX_METADATA_NODES = 1_000_000
"""Values a ``.mlem`` document may hold once YAML aliases are expanded."""
MAX_METADATA_DEPTH = 100
"""How deeply lists and mappings may nest."""
MAX_LINK_HOPS = 16
"""How many MLEM links in a row :func:`read` follows."""


def _check_expansion(doc: Any, source: str) -> None:
    """Refuse documents that expand to too many values, nest too deeply or refer to
    themselves (YAML aliases make a 1 KB file worth billions of values)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise MetadataError(f"{source} refers to itself (a recursive YAML alias)")
        if depth > MAX_METADATA_DEPTH:
            raise MetadataTooLargeError(
                f"{source} is nested deeper than {MAX_METADATA_DEPTH} levels")
        active.add(key)
        total = 1
        for child in node.values() if isinstance(node, dict) else node:
            total += size(child, depth + 1)
            if total > MAX_METADATA_NODES:
                raise MetadataTooLargeError(
                    f"{source} expands to more than {MAX_METADATA_NODES:,} values "
                    "(YAML aliases repeating the same data); refusing to read it")
        active.discard(key)
        sizes[key] = total
        return total

    size(doc, 0)


@functools.lru_cache(maxsize=128)
def _yaml_load_cached(text: bytes | str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(text, Loader=loader)
    _check_expansion(doc, "the metadata")
    return doc


def _yaml_load(text: bytes | str) -> Any:
    # Parsing YAML costs more than unpickling a small model; the cache is keyed by the
    # file's exact content, so it can never return stale metadata.
    return copy.deepcopy(_yaml_load_cached(text))
