"""Plain Python models: functions, callable objects and classes with predict-like methods."""

from __future__ import annotations

import inspect
from typing import Any

from mlem_lib.models.base import PREDICT_LIKE, ModelHandler


class CallableHandler(ModelHandler):
    types = ("callable", "python_class")

    def matches(self, obj: Any) -> bool:
        if inspect.isclass(obj) or inspect.ismodule(obj):
            return False
        return callable(obj) or any(callable(getattr(obj, m, None)) for m in PREDICT_LIKE)

    def model_type(self, obj: Any) -> str:
        if inspect.isroutine(obj) or not self._predict_like(obj):
            return "callable"
        return "python_class"

    def _predict_like(self, obj: Any) -> list[str]:
        return [m for m in PREDICT_LIKE if callable(getattr(obj, m, None))]

    def methods(self, obj: Any) -> list[str]:
        if inspect.isroutine(obj):
            return ["__call__"]
        methods = self._predict_like(obj)
        if callable(obj) and type(obj).__call__ is not object.__call__:
            methods.append("__call__")
        return methods

    def call(self, obj: Any, method: str, data: Any) -> Any:
        if method == "__call__":
            return obj(data)
        return getattr(obj, method)(data)


HANDLER = CallableHandler()
