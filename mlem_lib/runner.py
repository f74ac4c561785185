"""A loaded model together with its metadata: the one way methods get called.

``apply``, the server and the smoke tests all call models through
:class:`LoadedModel`, so input validation and method-name aliases behave the
same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlem_lib.meta import ModelMeta, Signature
from mlem_lib.models.base import ModelHandler


@dataclass
class LoadedModel:
    """A model object, its metadata and the handler that knows how to call it.

    Example:
        >>> import numpy as np
        >>> lm = LoadedModel.from_object(lambda a: a.sum(axis=1), sample_data=np.ones((1, 2)))
        >>> lm.call("predict", np.array([[1, 2], [3, 4]]))
        array([3., 7.])
        >>> lm.call("predict", np.ones((1, 3)))
        Traceback (most recent call last):
        ...
        mlem_lib.errors.SchemaError: array: expected shape (n, 2), got (1, 3) (axis 1 must be 2)
        >>> lm.encode("predict", np.array([3.0]))
        [3.0]
    """

    meta: ModelMeta
    model: Any
    handler: ModelHandler
    source: str | None = None  # the path or registry reference it was loaded from

    @classmethod
    def load(cls, path: str, repo: str | None = None, check_requirements: bool = True,
             device: str | None = None) -> LoadedModel:
        from mlem_lib.locate import load_found, open_object, require_model
        from mlem_lib.models.base import handler_for_type

        with open_object(path, repo) as found:
            require_model(found.meta, path)
            meta, model = load_found(found, check_requirements, device)
        meta = require_model(meta, path)
        return cls(meta=meta, model=model, handler=handler_for_type(meta.model_type.type),
                   source=path)

    @classmethod
    def from_object(cls, model: Any, sample_data: Any = None) -> LoadedModel:
        """Wrap an in-memory model, inferring its metadata as ``save`` would."""
        from mlem_lib.inference import infer_model_type

        handler, model_type = infer_model_type(model, sample_data)
        return cls(meta=ModelMeta(model_type=model_type), model=model, handler=handler)

    def signature(self, method: str) -> Signature:
        return self.meta.method(method)

    def validate(self, method: str, data: Any) -> Any:
        """Check and convert ``data`` against the method's first argument schema."""
        sig = self.signature(method)
        if not sig.args:
            return data
        return sig.args[0].type_.validate_value(data)

    def decode(self, method: str, payload: Any) -> Any:
        """Turn a JSON payload into the method's argument, validating it."""
        sig = self.signature(method)
        if not sig.args:
            return payload
        return sig.args[0].type_.from_json(payload)

    def call(self, method: str, data: Any, validate: bool = True) -> Any:
        """Call a method, validating the input first unless told not to."""
        sig = self.signature(method)
        if validate:
            data = self.validate(method, data)
        return self.handler.call(self.model, sig.name, data)

    def encode(self, method: str, result: Any) -> Any:
        """Turn a method's result into JSON with its return schema."""
        return self.signature(method).returns.to_json(result)
