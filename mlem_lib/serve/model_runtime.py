"""Which runtime answers a served model's methods: the native model or its ONNX twin.

``mlem serve MODEL --runtime onnx`` (or ``MLEM_MODEL_RUNTIME=onnx``, or a deployment
declaration's ``model_runtime: onnx``) serves the model through ONNX Runtime: the twin
is exported on the fly with :func:`mlem_lib.build.onnx.export_onnx` (parity checked on
the saved sample) and cached by the model's hash under ``$MLEM_ONNX_CACHE_DIR`` (default
``$MLEM_LIB_CACHE_DIR/onnx``, else ``~/.cache/mlem_lib/onnx``), or taken from a
given path (``--onnx-model``, an export of this very model). The server keeps the
native model's metadata, so ``/interface.json``, ``/health`` and every schema stay the
same; methods the graph does not answer (``decision_function``...) are answered by the
native model. ``--runtime auto`` does the same when the export passes its parity check,
and otherwise serves natively, saying why.

Example:
    >>> from mlem_lib.runner import LoadedModel
    >>> loaded = LoadedModel.from_object(lambda x: x, sample_data=[1.0])
    >>> messages = []
    >>> with_runtime(loaded, "auto", log=messages.append) is loaded
    True
    >>> messages[0].startswith("--runtime auto: serving natively: no ONNX converter")
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

from mlem_lib.errors import MlemError, ServeError
from mlem_lib.models.base import ModelHandler
from mlem_lib.models.onnx import OnnxModel
from mlem_lib.runner import LoadedModel

ModelRuntime = Literal["native", "onnx", "auto"]
RUNTIMES: tuple[str, ...] = ("native", "onnx", "auto")


class AcceleratedModel:
    """A native model whose methods are answered by its ONNX twin where the graph can.

    Attributes:
        twin: the ONNX export.
        native: the native model object, for the methods the graph does not answer.
        native_handler: the native model's handler.
        methods: every method served.
    """

    def __init__(self, twin: OnnxModel, native: Any, native_handler: ModelHandler,
                 methods: list[str]) -> None:
        self.twin = twin
        self.native = native
        self.native_handler = native_handler
        self.methods = methods

    def takes_arrays(self, arg_type: Any) -> bool:
        """Whether rows of values in the schema's column order may replace the table
        (the server's array fast path, :mod:`mlem_lib.serve.fastpath`)."""
        from mlem_lib.serve.fastpath import ArrayPath

        if not self.twin.takes_arrays(arg_type):
            return False
        if all(m in self.twin.methods for m in self.methods):
            return True
        return ArrayPath.for_model(self.native, arg_type) is not None


class AcceleratedHandler(ModelHandler):
    """Calls the twin for the methods it answers, the native model for the others."""

    types = ("onnx_accelerated",)

    def matches(self, obj: Any) -> bool:
        return isinstance(obj, AcceleratedModel)

    def call(self, obj: Any, method: str, data: Any) -> Any:
        if method in obj.twin.methods:
            return obj.twin.run(method, data)
        return obj.native_handler.call(obj.native, method, data)


ACCELERATED = AcceleratedHandler()


ENV_ONNX_CACHE_DIR = "MLEM_ONNX_CACHE_DIR"


def cache_root() -> str:
    """Where exported twins are cached: ``$MLEM_ONNX_CACHE_DIR``, else
    ``$MLEM_LIB_CACHE_DIR/onnx`` (default ``~/.cache/mlem_lib/onnx``)."""
    from mlem_lib.distributions import _cache_dir

    return os.environ.get(ENV_ONNX_CACHE_DIR) or os.path.join(_cache_dir(), "onnx")


def cached_twin_path(model_hash: str) -> str:
    """The cache path (without ``.mlem``) of the twin of the model with this hash."""
    return os.path.join(cache_root(), model_hash[:40] or "unhashed", "model.onnx")


def _twin_source_hash(meta: Any) -> str | None:
    export = getattr(meta, "onnx_export", None)
    source = export.get("source") if isinstance(export, dict) else None
    return source.get("model_hash") if isinstance(source, dict) else None


def load_twin(path: str, native: LoadedModel) -> LoadedModel:
    """The ONNX export at ``path``, checked to be an export of ``native``.

    Raises:
        ServeError: ``path`` holds another model, or an export of another model.
    """
    twin = LoadedModel.load(path)
    if not isinstance(twin.model, OnnxModel):
        raise ServeError(f"{path} is a {twin.meta.model_type.type} model, not an ONNX export")
    source = _twin_source_hash(twin.meta)
    if source != native.meta.model_hash:
        raise ServeError(f"{path} was exported from another model (hash {source or 'unknown'}"
                         f", serving {native.meta.model_hash}): export it again with "
                         "mlem build MODEL onnx")
    for name in twin.model.methods:
        if native.meta.model_type.methods.get(name) != twin.meta.model_type.methods.get(name):
            raise ServeError(f"{path}: the method {name} of the export has another schema "
                             "than the model's")
    return twin


def export_twin(native: LoadedModel, path: str | None = None,
                log: Callable[[str], None] | None = None) -> LoadedModel:
    """The twin of ``native``: from the cache, else exported (parity checked) and cached.

    Raises:
        BuildError: no converter, a failed conversion, or a failed parity check.
        MissingExtraError: ONNX Runtime or the converter is not installed.
    """
    from mlem_lib.build.onnx import DEFAULT_TOLERANCE, _checked_twin, _convert, save_twin

    target = cached_twin_path(native.meta.model_hash)
    if os.path.exists(target + ".mlem"):
        try:
            return load_twin(target, native)
        except MlemError:
            pass  # a stale or broken entry: export again over it
    say = log or (lambda line: None)
    conversion = _convert(native, None)
    info, twin = _checked_twin(native, conversion, path or "the model", DEFAULT_TOLERANCE,
                               None, say)
    save_twin(twin, native.meta, target, info)
    say(f"exported the ONNX twin ({info.converter}) to {target}")
    return LoadedModel.load(target)


def with_runtime(loaded: LoadedModel, runtime: str = "native", *,
                 onnx_model: str | None = None, path: str | None = None,
                 log: Callable[[str], None] | None = None) -> LoadedModel:
    """``loaded`` served by the runtime asked for (see the module docstring).

    Args:
        loaded: the native model.
        runtime: ``native``, ``onnx`` or ``auto``.
        onnx_model: an ONNX export of this model to use instead of exporting one.
        path: the model's path, for messages.
        log: receives one line on what runs where, or why ``auto`` stays native.

    Raises:
        ServeError: an unknown runtime, or ``onnx`` when no twin can be had (the reason
            is in the message).
    """
    say = log or (lambda line: None)
    if runtime not in RUNTIMES:
        raise ServeError(f"unknown runtime {runtime!r}: use {', '.join(RUNTIMES)}")
    if runtime == "native" or isinstance(loaded.model, OnnxModel):
        return loaded
    try:
        twin = (load_twin(onnx_model, loaded) if onnx_model
                else export_twin(loaded, path, say))
    except (MlemError, ImportError) as exc:
        reason = " ".join(str(exc).split())
        if runtime == "onnx":
            raise ServeError(f"--runtime onnx: {reason}") from exc
        say(f"--runtime auto: serving natively: {reason}")
        return loaded
    model = AcceleratedModel(twin.model, loaded.model, loaded.handler,
                             list(loaded.meta.model_type.methods))
    native_only = [m for m in loaded.meta.model_type.methods if m not in twin.model.methods]
    say(f"--runtime {runtime}: {', '.join(twin.model.methods)} answered by ONNX Runtime"
        + (f"; {', '.join(native_only)} by the native model" if native_only else ""))
    return LoadedModel(meta=loaded.meta, model=model, handler=ACCELERATED, source=loaded.source)


# what exporting a model of each framework on the fly needs besides ONNX Runtime
_CONVERTER_DISTRIBUTIONS = {"sklearn": ["skl2onnx"], "sklearn_pipeline": ["skl2onnx"],
                            "lightgbm": ["onnxmltools"], "xgboost": ["onnxmltools"]}


def runtime_requirements(meta: Any) -> list[str]:
    """Pip requirements for serving ``meta``'s model with ``--runtime onnx|auto`` elsewhere
    (a Docker image): ONNX Runtime and the converter, at the versions installed here.

    Example:
        >>> from mlem_lib.meta import ModelMeta, ModelType
        >>> [r.split("==")[0] for r in runtime_requirements(
        ...     ModelMeta(model_type=ModelType(type="sklearn")))]
        ['onnxruntime', 'onnx', 'skl2onnx']
    """
    import importlib.metadata

    dists = ["onnxruntime", "onnx", *_CONVERTER_DISTRIBUTIONS.get(meta.model_type.type, [])]
    out = []
    for dist in dists:
        try:
            out.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(dist)
    return out
