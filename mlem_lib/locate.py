"""Turning what a user typed (a path, a URL or a registry reference) into a readable path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

_REF = re.compile(r"^(?P<name>[A-Za-z0-9][\w.-]*)(?P<sep>[@#])(?P<spec>[\w.\-#]+)$")


def is_registry_reference(path: str) -> bool:
    """``rf@v1.2.0``, ``rf@latest`` or ``rf#prod`` (and not a path that exists)."""
    import os

    return bool(_REF.match(path)) and "/" not in path and not os.path.exists(path)


@contextmanager
def resolve_reference(path: str, repo: str | None = None) -> Iterator[str]:
    """Yield a path that :mod:`mlem_lib.mlemfile` can read for ``path``.

    Registry references are checked out from git (and DVC) into a temporary folder
    that lives as long as the context.
    """
    if not is_registry_reference(path):
        yield path
        return
    from mlem_lib.registry import checkout_reference

    with checkout_reference(path, repo) as local:
        yield local
