"""``mlem import PATH OUT``: a saved model (or data object) from a file made elsewhere.

The file is read into an object, which :func:`mlem_lib.api.save` then saves with
inferred metadata, as if it had just been trained:

* a pickle (``.pkl``, ``.pickle``) or joblib dump (``.joblib``) of any model a framework
  handler recognises (scikit-learn, xgboost, LightGBM, callables...);
* a framework's native file: whichever handler of the ``models`` plugin group lists the
  file's suffix in ``file_suffixes`` reads it (``import_file``), so a framework plugin
  brings its own formats (ONNX ``.onnx``, TorchScript / ``torch.save`` ``.pt``,
  CatBoost ``.cbm``, Keras ``.keras``, xgboost ``.ubj``...). ``framework=`` picks the
  handler when the suffix is ambiguous (a LightGBM ``model.txt``);
* a data file (CSV, Parquet, JSON Lines, ``.npy``): saved as a data object.

``sample=`` (a data file) gives the method schemas, as ``sample_data`` does for ``save``.
Pickles are code: import only files you trust (see the README's security model).

Example:
    >>> import pickle, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "double.pkl"), "wb") as f:
    ...     pickle.dump(len, f)
    >>> meta = import_file(os.path.join(folder, "double.pkl"), os.path.join(folder, "m"),
    ...                    sample=None)
    >>> meta.model_type.type
    'callable'
"""

from __future__ import annotations

import os
import pickle
from typing import TYPE_CHECKING, Any

from mlem_lib.errors import ObjectNotFoundError, UnsupportedObjectError

if TYPE_CHECKING:
    from mlem_lib.meta import DataMeta, ModelMeta
    from mlem_lib.models.base import ModelHandler

__all__ = ["PICKLE_SUFFIXES", "handler_for_file", "import_file", "import_formats",
           "read_data_file"]

PICKLE_SUFFIXES = {".pkl": "pickle", ".pickle": "pickle", ".pck": "pickle",
                   ".joblib": "joblib", ".jbl": "joblib"}
DATA_SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson", ".npy", ".csv.gz",
                 ".jsonl.gz")
# MLEM's --type values -> ours
_MLEM_TYPES = {"pickle": "pickle", "joblib": "joblib", "torch": "torch"}


def _suffix(path: str) -> str:
    name = os.path.basename(path).lower()
    for double in (".csv.gz", ".jsonl.gz"):
        if name.endswith(double):
            return double
    return os.path.splitext(name)[1]


def import_formats() -> dict[str, str]:
    """Every suffix ``mlem import`` reads, with what reads it.

    Example:
        >>> import_formats()[".pkl"], import_formats()[".csv"]
        ('pickle', 'data')
    """
    from mlem_lib import plugins

    found: dict[str, str] = dict(PICKLE_SUFFIXES)
    for plugin in plugins.plugins("models"):
        try:
            handler = plugin.load()
        except Exception:  # a plugin that cannot be imported offers no formats
            continue
        for suffix in getattr(handler, "file_suffixes", ()):
            found.setdefault(suffix.lower(), plugin.name)
    found.update({s: "data" for s in DATA_SUFFIXES})
    return found


def handler_for_file(path: str, framework: str | None = None) -> ModelHandler | None:
    """The handler that reads ``path`` natively (by ``framework`` or by suffix), or None.

    Raises:
        UnsupportedObjectError: ``framework`` names no framework, or one that reads no
            files.
    """
    from mlem_lib import plugins
    from mlem_lib.errors import UnknownPluginError

    if framework is not None:
        try:
            handler: ModelHandler = plugins.get("models", framework)
        except UnknownPluginError as exc:
            raise UnsupportedObjectError(str(exc)) from None
        if type(handler).import_file is _base_import_file():
            raise UnsupportedObjectError(f"framework {framework!r} reads no model files: "
                                         "give a pickle or joblib dump")
        return handler
    suffix = _suffix(path)
    for plugin in plugins.plugins("models"):
        if not plugin.detect and plugin.source == "builtin":
            continue  # MLEM's aliases point at handlers listed under their own name
        try:
            candidate = plugin.load()
        except Exception:
            continue
        if suffix in (s.lower() for s in getattr(candidate, "file_suffixes", ())):
            return candidate  # type: ignore[no-any-return]
    return None


def _base_import_file() -> Any:
    from mlem_lib.models.base import ModelHandler

    return ModelHandler.import_file


def read_data_file(path: str, rows: int | None = None) -> Any:
    """A data file (CSV, Parquet, JSON Lines, ``.npy``) in memory: all of it, or the first
    ``rows`` rows.

    Example:
        >>> import numpy as np, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.npy")
        >>> np.save(p, np.arange(6).reshape(3, 2))
        >>> read_data_file(p, rows=2).tolist()
        [[0, 1], [2, 3]]
    """
    from mlem_lib.formats import open_source

    chunks = []
    taken = 0
    for chunk in open_source(path).chunks(rows or 1_000_000):
        chunks.append(chunk)
        taken += len(chunk)
        if rows is not None and taken >= rows:
            break
    if not chunks:
        raise UnsupportedObjectError(f"{path} holds no rows")
    if len(chunks) == 1:
        return chunks[0]
    first = chunks[0]
    if hasattr(first, "iloc"):
        import pandas as pd

        return pd.concat(chunks, ignore_index=True)
    import numpy as np

    return np.concatenate(chunks)


def _read_pickle(path: str, kind: str) -> Any:
    from mlem_lib.storage import get_fs

    fs, inner = get_fs(path)
    with fs.open(inner, "rb") as f:
        if kind == "joblib":
            import joblib

            return joblib.load(f)
        return pickle.load(f)


def import_file(path: str, out: str, *, sample: str | None = None,
                framework: str | None = None, description: str | None = None,
                labels: list[str] | None = None) -> ModelMeta | DataMeta:
    """Save the model (or data) in ``path`` as a mlem_lib object at ``out``.

    Args:
        path: the file to import (local path or URL).
        out: where to save it (``out`` + ``out.mlem``).
        sample: a data file whose first rows give the methods' schemas.
        framework: the handler to read a native file with (default: by suffix), or
            ``pickle`` / ``joblib`` (MLEM's ``--type``).
        description: free text for the metadata.
        labels: labels for the metadata.

    Raises:
        ObjectNotFoundError: ``path`` does not exist.
        UnsupportedObjectError: no reader for this file, or its content is not a model.
    """
    from mlem_lib import api
    from mlem_lib.models.base import find_handler
    from mlem_lib.storage import get_fs

    fs, inner = get_fs(path)
    if not fs.exists(inner):
        raise ObjectNotFoundError(f"nothing to import at {path}")
    kind = _MLEM_TYPES.get(framework or "", framework)
    suffix = _suffix(path)
    sample_data = read_data_file(sample, rows=1000) if sample else None
    if kind is not None and kind.startswith("pandas"):  # MLEM's --type pandas[csv]
        kind = "data"
    if kind == "data" or (kind is None and suffix in DATA_SUFFIXES):
        if sample is not None:
            raise UnsupportedObjectError("--sample is for models; a data file is its own "
                                         "sample")
        return api.save(read_data_file(path), out, description=description, labels=labels)
    if kind in ("pickle", "joblib") or (kind is None and suffix in PICKLE_SUFFIXES):
        obj = _read_pickle(path, kind or PICKLE_SUFFIXES[suffix])
        if find_handler(obj) is None:
            raise UnsupportedObjectError(f"{path} holds a {type(obj).__name__}, which no "
                                         "framework handler saves as a model")
    else:
        handler = handler_for_file(path, kind)
        if handler is None:
            known = ", ".join(sorted(import_formats()))
            raise UnsupportedObjectError(f"cannot tell how to read {path} (suffix "
                                         f"{suffix or 'none'}): known suffixes {known}; or "
                                         "pass --type FRAMEWORK")
        local = path
        if "://" in path:  # native readers want a local file
            import tempfile

            tmp = tempfile.mkdtemp(prefix="mlem-import-")
            local = os.path.join(tmp, os.path.basename(inner))
            fs.get_file(inner, local)
        obj = handler.import_file(local)
    meta = api.save(obj, out, sample_data, description=description, labels=labels)
    return meta
