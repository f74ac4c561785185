"""Reading and writing MLEM's other ``.mlem`` objects: deployments, envs, builders.

Models and data are read by :mod:`mlem_lib.mlemfile`; links by
:mod:`mlem_lib.compat.links`. This module reads the rest as plain mappings (with the
same size and alias limits as metadata files) and writes them in MLEM 0.4's layout, so
``mlem declare`` and ``mlem deployment run NAME -t ENV -c k=v`` leave files MLEM itself
can read.

Example:
    >>> nest({"image.name": "iris", "image.tag": "v1", "push": True})
    {'image': {'name': 'iris', 'tag': 'v1'}, 'push': True}
    >>> parse_options(["app_name=demo", "ports.0=8080:8080", "rm=false"])
    {'app_name': 'demo', 'ports.0': '8080:8080', 'rm': False}
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from mlem_lib.errors import MetadataError, ObjectNotFoundError

__all__ = ["MLEM_OBJECT_TYPES", "find_object", "nest", "parse_options", "read_object",
           "write_object"]

MLEM_OBJECT_TYPES = ("model", "data", "link", "deployment", "env", "builder")


def find_object(path: str) -> str:
    """The ``.mlem`` file ``path`` names: ``path`` itself or ``path.mlem``.

    Raises:
        ObjectNotFoundError: neither exists.

    Example:
        >>> find_object("/no/such/app")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mlem_lib.errors.ObjectNotFoundError: no MLEM object at /no/such/app ...
    """
    from mlem_lib.storage import get_fs

    candidates = [path] if path.endswith(".mlem") else [path, path + ".mlem"]
    for candidate in candidates:
        fs, inner = get_fs(candidate)
        if fs.isfile(inner):
            return candidate
    raise ObjectNotFoundError(f"no MLEM object at {path} (nor {path}.mlem)")


def read_object(path: str, expected: str | Iterable[str] | None = None
                ) -> tuple[dict[str, Any], str]:
    """Read a ``.mlem`` file as a mapping; returns it and the file's path.

    Args:
        path: the file, with or without ``.mlem``.
        expected: the ``object_type`` (or types) it must have.

    Raises:
        ObjectNotFoundError: no such file.
        MetadataError: not YAML, not a mapping, too large, or another object type.
    """
    from mlem_lib.mlemfile import MAX_METADATA_BYTES, _yaml_load
    from mlem_lib.storage import get_fs

    found = find_object(path)
    fs, inner = get_fs(found)
    if fs.size(inner) > MAX_METADATA_BYTES:
        raise MetadataError(f"{found} is larger than {MAX_METADATA_BYTES:,} bytes")
    try:
        doc = _yaml_load(bytes(fs.cat_file(inner)))
    except MetadataError as exc:
        raise type(exc)(f"{found}: {exc}") from None
    except Exception as exc:  # yaml.YAMLError, without importing yaml here
        raise MetadataError(f"{found} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(doc, dict):
        raise MetadataError(f"{found} does not contain a mapping")
    if expected is not None:
        wanted = {expected} if isinstance(expected, str) else set(expected)
        kind = doc.get("object_type")
        if kind not in wanted:
            raise MetadataError(f"{found} is a MLEM {kind or 'file without object_type'}, "
                                f"not a {' or '.join(sorted(wanted))}")
    return doc, found


def _value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def parse_options(pairs: Iterable[str], flag: str = "-c") -> dict[str, Any]:
    """``KEY=VALUE`` strings (MLEM's ``-c``/``--conf``) as a mapping; values read as YAML.

    Raises:
        MetadataError: an item without ``=``.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise MetadataError(f"{flag} {pair!r}: use {flag} KEY=VALUE")
        out[key.strip()] = _value(text)
    return out


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys (``image.name``, ``ports.0``) as nested mappings and lists."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise MetadataError(f"option {key!r} conflicts with another option")
        node[parts[-1]] = value
    return {k: _lists(v) for k, v in out.items()}


def _lists(value: Any) -> Any:
    """``{"0": a, "1": b}`` (from ``ports.0=...``) as ``[a, b]``."""
    if not isinstance(value, dict):
        return value
    value = {k: _lists(v) for k, v in value.items()}
    if value and all(isinstance(k, str) and k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return value


def write_object(path: str, object_type: str, kind: str, fields: dict[str, Any]) -> str:
    """Write a MLEM object file (``object_type``, ``type`` and the fields, nested).

    Returns:
        The file's path (``.mlem`` added when missing).

    Example:
        >>> import tempfile, os
        >>> out = write_object(os.path.join(tempfile.mkdtemp(), "app"), "deployment",
        ...                    "heroku", {"app_name": "demo", "env": "staging"})
        >>> print(open(out).read(), end="")
        app_name: demo
        env: staging
        object_type: deployment
        type: heroku
    """
    from mlem_lib import yamltext

    target = path if path.endswith(".mlem") else path + ".mlem"
    doc = {**nest(fields), "object_type": object_type, "type": kind}
    folder = os.path.dirname(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(yamltext.dump({k: doc[k] for k in sorted(doc)}))
    os.replace(tmp, target)
    return target
