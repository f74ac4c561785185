"""Rendering metadata as readable text tables (``mlem show``)."""

from __future__ import annotations

from mlem_lib.meta import (
    CustomRequirement,
    DataMeta,
    ModelMeta,
    PythonRequirement,
    public_name,
)

#: How each io type stores the model, in words (``mlem show``'s first line)
STORAGE = {
    "pickle": "pickle", "simple_pickle": "pickle", "cloudpickle": "pickle",
    "xgboost_json": "xgboost's JSON format (native)",
    "lightgbm_txt": "LightGBM's text format (native)",
    "torchscript": "TorchScript (native)", "torch_pickle": "torch.save (pickle)",
    "torch_io": "torch (MLEM 0.4)",
    "transformers": "transformers' save_pretrained files (native)",
}


def storage(io_type: str) -> str:
    """How a model of ``io_type`` is stored, in words.

    Example:
        >>> storage("xgboost_json"), storage("pickle")
        ("xgboost's JSON format (native)", 'pickle')
    """
    return STORAGE.get(io_type, io_type)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns.

    Example:
        >>> print(table(["a", "b"], [["1", "22"]]))
        a  b
        -  --
        1  22
    """
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def describe(meta: ModelMeta | DataMeta, path: str) -> str:
    """The full description of an object, as ``mlem show`` prints it."""
    out: list[str] = []
    if isinstance(meta, ModelMeta):
        out.append(f"Model {path}  ({meta.model_type.type}, saved as "
                   f"{storage(meta.model_type.io.type)})")
    else:
        out.append(f"Data {path}  ({meta.data_type.describe()}, {meta.format})")
    if meta.description:
        out.append(f"Description: {meta.description}")
    if meta.labels:
        out.append(f"Labels: {', '.join(meta.labels)}")
    if isinstance(meta, ModelMeta):
        rows = []
        listed: set[str] = set()
        for name, sig in meta.model_type.methods.items():
            public = public_name(name)  # the name the server routes and packages define
            if public in listed:
                continue
            listed.add(public)
            args = ", ".join(f"{a.name}: {a.type_.describe()}" for a in sig.args)
            rows.append([public, args, sig.returns.describe()])
        out += ["", "Methods", table(["method", "arguments", "returns"], rows)]
    rows = []
    for req in meta.requirements:
        if isinstance(req, PythonRequirement):
            rows.append([req.distribution, req.version or "", req.module])
        elif isinstance(req, CustomRequirement):
            rows.append([req.name, "(local code, shipped)", req.name])
        else:
            rows.append([req.package_name, "(system package)", ""])
    out += ["", "Requirements", table(["package", "version", "module"], rows)]
    rows = [[name, a.uri, _size(a.size), f"{a.hash_algorithm}:{a.hash[:16]}"]
            for name, a in meta.artifacts.items()]
    out += ["", "Artifacts", table(["name", "uri", "size", "hash"], rows)]
    return "\n".join(out)
