"""The model handler interface and the registry that picks a handler for an object.

One module per framework implements a :class:`ModelHandler`. The registry looks
at the modules in the object's class hierarchy and imports only the handler
module that matches, so saving a scikit-learn model never imports xgboost.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
from typing import IO, Any, ClassVar

from mlem_lib.errors import MetadataError, MethodNotFoundError

# top-level module of a class in the object's MRO -> handler module
_BY_MODULE: dict[str, str] = {
    "xgboost": "mlem_lib.models.xgboost",
    "lightgbm": "mlem_lib.models.lightgbm",
    "sklearn": "mlem_lib.models.sklearn",
}
# model_type.type in a .mlem file -> handler module
_BY_TYPE: dict[str, str] = {
    "sklearn": "mlem_lib.models.sklearn",
    "sklearn_pipeline": "mlem_lib.models.sklearn",
    "xgboost": "mlem_lib.models.xgboost",
    "lightgbm": "mlem_lib.models.lightgbm",
    "callable": "mlem_lib.models.callable",
    "python_class": "mlem_lib.models.callable",
}
# io.type -> how to read bytes back into an object (MLEM's names included)
PICKLE_IOS = {"pickle", "simple_pickle", "cloudpickle"}

PREDICT_LIKE = ("predict", "predict_proba", "predict_log_proba", "decision_function",
                "transform", "score_samples")


class ModelHandler:
    """How to recognise, describe, write, read and call one kind of model."""

    types: ClassVar[tuple[str, ...]] = ()

    def matches(self, obj: Any) -> bool:
        raise NotImplementedError

    def model_type(self, obj: Any) -> str:
        return self.types[0]

    def methods(self, obj: Any) -> list[str]:
        return [m for m in PREDICT_LIKE if callable(getattr(obj, m, None))]

    def io_type(self, obj: Any) -> str:
        return "pickle"

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        import cloudpickle

        cloudpickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, data: bytes, io_type: str) -> Any:
        if io_type in PICKLE_IOS:
            return pickle.loads(data)
        raise MetadataError(f"unknown model io type {io_type!r} for {self.types[0]}")

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


def _handler_module_for(obj: Any) -> str:
    for cls in inspect.getmro(type(obj)):
        top = cls.__module__.split(".")[0]
        if top in _BY_MODULE:
            return _BY_MODULE[top]
    return "mlem_lib.models.callable"


def find_handler(obj: Any) -> ModelHandler | None:
    """The handler that can save ``obj``, or None when it is not a model."""
    module = importlib.import_module(_handler_module_for(obj))
    handler: ModelHandler = module.HANDLER
    if handler.matches(obj):
        return handler
    if module.__name__ != "mlem_lib.models.callable":
        fallback: ModelHandler = importlib.import_module("mlem_lib.models.callable").HANDLER
        if fallback.matches(obj):
            return fallback
    return None


def handler_for_type(type_name: str) -> ModelHandler:
    """The handler for a ``model_type.type`` read from a ``.mlem`` file."""
    module = _BY_TYPE.get(type_name, "mlem_lib.models.callable")
    handler: ModelHandler = importlib.import_module(module).HANDLER
    return handler
