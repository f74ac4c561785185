"""Reading ``.mlem`` files written by MLEM 0.2-0.4 into mlem_lib's layout.

* 0.2/0.3 (the launch post): top-level ``model_type``; artifacts may be a list.
* 0.4: ``processors: {model: {type, methods, io}}`` and ``call_orders``; artifacts a
  mapping; data objects keep their schema under ``reader.data_type``. A method's one
  argument is called ``data``, as MLEM's server called it (the file says ``X``).

The original keys stay in the result (unknown fields are kept), only the keys
mlem_lib reads are added.
"""

from __future__ import annotations

import copy
from typing import Any

from mlem_lib.errors import MetadataError

# MLEM data readers -> the format mlem_lib reads the artifact with
_READER_FORMATS = {"numpy": "npz", "pandas": "csv", "pandas_series": "csv", "builtin": "json"}


# MLEM's other object types -> what to do with them instead
_OTHER_OBJECTS = {
    "deployment": "use it with `mlem deployment run|status|remove FILE`",
    "env": "name it in a deployment declaration (env: FILE)",
    "builder": "use it with `mlem build --load FILE MODEL`",
    "link": "too many links in a row (or a cycle)",
}


def _artifacts(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        out: dict[str, Any] = {}
        for i, art in enumerate(raw):
            out["data" if i == 0 else f"data_{i}"] = art
        return out
    if isinstance(raw, dict):
        return raw
    raise MetadataError(f"'artifacts' must be a mapping or a list, got {type(raw).__name__}")


def _requirements(raw: Any) -> list[Any]:
    if raw is None:
        return []
    if isinstance(raw, dict) and "__root__" in raw:  # pydantic 1 custom root
        raw = raw["__root__"]
    if not isinstance(raw, list):
        raise MetadataError("'requirements' must be a list")
    out = []
    for req in raw:
        if isinstance(req, dict) and req.get("type") in (None, "installable"):
            req = {k: v for k, v in req.items() if k != "type"}
        out.append(req)
    return out


def _standard_args(model_type: Any) -> Any:
    """MLEM 0.4 recorded the framework's argument names (scikit-learn's ``X``) but its server
    called the one argument of a method ``data`` (``standardize``): so do we, so that
    ``{"data": ...}`` bodies written for MLEM's server keep working."""
    if not isinstance(model_type, dict) or not isinstance(model_type.get("methods"), dict):
        return model_type
    methods = {}
    for name, sig in model_type["methods"].items():
        args = sig.get("args") if isinstance(sig, dict) else None
        if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
            sig = dict(sig, args=[dict(args[0], name="data")])
        methods[name] = sig
    return dict(model_type, methods=methods)


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Return a dict that :class:`mlem_lib.meta.ModelMeta` or ``DataMeta`` validates.

    Example:
        >>> normalize({"object_type": "model", "processors": {"model": {"type": "sklearn",
        ...     "methods": {}}}, "call_orders": {}})["model_type"]["type"]
        'sklearn'
    """
    data = copy.copy(raw)
    kind = data.get("object_type")
    if kind is None:
        if "model_type" in data or "processors" in data:
            kind = data["object_type"] = "model"
        elif "data_type" in data or "reader" in data:
            kind = data["object_type"] = "data"
    if kind == "model":
        if "model_type" not in data:
            processors = data.get("processors")
            if not isinstance(processors, dict) or not processors:
                raise MetadataError("model file has neither 'model_type' nor 'processors'")
            name = "model" if "model" in processors else next(iter(processors))
            data["model_type"] = _standard_args(processors[name])
        model_type = data["model_type"]
        if isinstance(model_type, dict) and isinstance(model_type.get("io"), str):
            model_type = dict(model_type, io={"type": model_type["io"]})
            data["model_type"] = model_type
    elif kind == "data":
        reader = data.get("reader")
        if "data_type" not in data and isinstance(reader, dict):
            data["data_type"] = reader.get("data_type")
        if "format" not in data:
            fmt = None
            if isinstance(reader, dict):
                fmt = reader.get("format") or _READER_FORMATS.get(str(reader.get("type")))
            data["format"] = fmt or "json"
    elif kind in _OTHER_OBJECTS:
        raise MetadataError(f"this is a MLEM {kind}, not a model or data object: "
                            f"{_OTHER_OBJECTS[kind]}")
    else:
        raise MetadataError(f"unknown object_type {kind!r} (expected 'model' or 'data')")
    data["artifacts"] = _artifacts(data.get("artifacts"))
    data["requirements"] = _requirements(data.get("requirements"))
    return data
