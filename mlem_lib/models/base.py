"""The model handler interface, and how a handler is picked for an object or a type name.

One module per framework implements a :class:`ModelHandler` and is registered in the
``models`` group of :mod:`mlem_lib.plugins` (one line there, or an entry point in
``mlem_lib.models`` for a third-party package). Handlers are asked in the order of the
object's class hierarchy, and only those claiming a module of that hierarchy are
imported, so saving a scikit-learn model never imports xgboost.

Example:
    >>> type(find_handler(lambda x: x)).__name__
    'CallableHandler'
    >>> handler_for_type("sklearn_pipeline").types
    ('sklearn', 'sklearn_pipeline')
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, ClassVar

from mlem_lib.errors import MetadataError, MethodNotFoundError

if TYPE_CHECKING:
    from mlem_lib.meta import ModelIO, Signature

# io.type -> how to read bytes back into an object (MLEM's names included)
PICKLE_IOS = {"pickle", "simple_pickle", "cloudpickle"}

PREDICT_LIKE = ("predict", "predict_proba", "predict_log_proba", "decision_function",
                "transform", "score_samples")
#: methods that answer one column per class, and the prefix of those columns' names
PER_CLASS_PREFIX = {"predict_proba": "proba", "predict_log_proba": "log_proba",
                    "decision_function": "decision"}

# model files that ``save`` takes by path: suffix -> the framework that reads them
MODEL_FILE_SUFFIXES = {".onnx": "onnx", ".keras": "keras"}


class ModelHandler:
    """How to recognise, describe, write, read and call one kind of model.

    A model is written as one file (:meth:`dump`, read back by :meth:`load_file`), or, when
    :meth:`is_folder` says so for its io type, as a folder of files (:meth:`dump_dir` /
    :meth:`load_dir`) whose every file is an artifact with its own size and hash.
    """

    types: ClassVar[tuple[str, ...]] = ()
    #: suffixes of the framework's own model files, read by :meth:`import_file`
    #: (``mlem import model.onnx out``)
    file_suffixes: ClassVar[tuple[str, ...]] = ()

    def matches(self, obj: Any) -> bool:
        raise NotImplementedError

    def model_type(self, obj: Any) -> str:
        return self.types[0]

    def methods(self, obj: Any) -> list[str]:
        return [m for m in PREDICT_LIKE if callable(getattr(obj, m, None))]

    def io_type(self, obj: Any) -> str:
        return "pickle"

    def model_io(self, obj: Any) -> ModelIO:
        """What ``model_type.io`` records: the format, and whatever else loading needs."""
        from mlem_lib.meta import ModelIO

        return ModelIO(type=self.io_type(obj))

    def signatures(self, obj: Any, sample: Any) -> dict[str, Signature] | None:
        """The methods' schemas when the model itself says them (an ONNX graph), else
        ``None``: they are then inferred from the sample."""
        return None

    def prepare(self, obj: Any, sample: Any) -> Any:
        """The object ``save`` writes, given the sample (default: ``obj`` itself).

        A handler may turn the model into a portable form here (PyTorch: TorchScript),
        after the methods were inferred on the original.
        """
        return obj

    def is_folder(self, io: ModelIO) -> bool:
        """True when models written this way are a folder of files (:meth:`dump_dir`)."""
        return False

    def dump_dir(self, obj: Any, folder: str) -> None:
        """Write the model as files into ``folder`` (an empty folder that exists)."""
        raise NotImplementedError

    def load_dir(self, folder: str, io: ModelIO, device: str | None = None) -> Any:
        """Read a model written by :meth:`dump_dir` (its files are verified already)."""
        raise NotImplementedError

    def artifact_modules(self, obj: Any, io: ModelIO,
                         open_artifact: Callable[[], IO[bytes]] | None) -> set[str]:
        """Modules the written model needs: :meth:`extra_modules`, plus, for a pickle, the
        modules of every global it references and the imports in code pickled by value."""
        from mlem_lib import requirements

        modules = set(self.extra_modules(obj))
        if io.type == "pickle" and open_artifact is not None:
            with open_artifact() as f:
                modules |= requirements.pickled_modules(f)
            modules |= requirements.code_imports(obj, modules)
        return modules

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        import cloudpickle

        cloudpickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, data: bytes, io_type: str) -> Any:
        if io_type in PICKLE_IOS:
            return pickle.loads(data)
        raise MetadataError(f"unknown model io type {io_type!r} for {self.types[0]}")

    def load_file(self, data: bytes, io: ModelIO, device: str | None = None) -> Any:
        """Read a one-file model from its verified bytes and ``model_type.io`` (default:
        :meth:`load`); ``device`` is for frameworks that place models on one."""
        return self.load(data, io.type)

    def call(self, obj: Any, method: str, data: Any) -> Any:
        """Call ``method`` of the model on one argument."""
        if method == "__call__":
            return obj(data)
        fn = getattr(obj, method, None)
        if fn is None:
            raise MethodNotFoundError(f"model has no method '{method}'")
        return fn(data)

    def default_input(self, obj: Any) -> Any:
        """A schema-free guess of the argument type when no sample is given (or None)."""
        return None

    def extra_modules(self, obj: Any) -> list[str]:
        return []

    def output_columns(self, obj: Any, method: str, result: Any) -> list[str] | None:
        """Names for the columns of a 2-D result (``None``: ``prediction_0``...).

        A classifier's per-class methods get ``<prefix>_<class label>``, such as
        ``proba_setosa`` for ``predict_proba``, from the model's ``classes_``.

        Example:
            >>> import numpy as np
            >>> class Clf:
            ...     classes_ = np.array(["no", "yes"])
            >>> ModelHandler().output_columns(Clf(), "predict_proba", np.zeros((3, 2)))
            ['proba_no', 'proba_yes']
        """
        prefix = PER_CLASS_PREFIX.get(method)
        classes = getattr(obj, "classes_", None)
        shape = getattr(result, "shape", None)
        if prefix is None or classes is None or shape is None or len(shape) != 2:
            return None
        try:
            labels = [str(c.item() if hasattr(c, "item") else c) for c in list(classes)]
        except TypeError:
            return None
        if len(labels) != shape[1] or len(set(labels)) != len(labels):
            return None
        return [f"{prefix}_{label}" for label in labels]

    def import_file(self, path: str) -> Any:
        """Read a model file the framework wrote itself (``mlem import``): a local path
        whose suffix is one of :attr:`file_suffixes`, or any file the user says is this
        framework's.

        Raises:
            UnsupportedObjectError: the framework reads no model files.
        """
        from mlem_lib.errors import UnsupportedObjectError

        raise UnsupportedObjectError(f"{self.types[0]} reads no model files: import a "
                                     "pickle or joblib dump instead")


def find_handler(obj: Any) -> ModelHandler | None:
    """The handler that can save ``obj``, or None when it is not a model."""
    from mlem_lib import plugins

    for handler in plugins.candidates("models", obj):
        if handler.matches(obj):
            return handler  # type: ignore[no-any-return]
    return None


def model_from_file(obj: Any) -> Any:
    """The model in a model file given by path (``model.onnx``), else ``obj`` unchanged.

    Example:
        >>> model_from_file("just a string")
        'just a string'
    """
    if not isinstance(obj, str | os.PathLike):
        return obj
    suffix = os.path.splitext(os.fspath(obj))[1].lower()
    kind = MODEL_FILE_SUFFIXES.get(suffix)
    if kind is None:
        return obj
    from mlem_lib import plugins

    return plugins.get("models", kind).from_file(os.fspath(obj))


def handler_for_type(type_name: str) -> ModelHandler:
    """The handler for a ``model_type.type`` read from a ``.mlem`` file.

    An unknown type falls back to the callable handler, which unpickles and calls
    whatever was saved (MLEM files name frameworks this version may not know).
    """
    from mlem_lib import plugins
    from mlem_lib.errors import UnknownPluginError

    try:
        handler: ModelHandler = plugins.get("models", type_name)
    except UnknownPluginError:
        handler = plugins.get("models", "callable")
    return handler
