"""Inferring a model's metadata from the object and an optional sample.

Nothing here is declared by the user: the framework comes from the object's
class, the methods from what it exposes, the argument schema from the sample
(with the batch axis left free) and the return schema from calling each method
on a few sample rows.
"""

from __future__ import annotations

import warnings
from typing import Any

from mlem_lib.data.base import DataType, UnspecifiedType, infer_data_type
from mlem_lib.errors import UnsupportedObjectError
from mlem_lib.meta import Argument, ModelIO, ModelType, Signature
from mlem_lib.models.base import ModelHandler, find_handler

SAMPLE_ROWS = 5


def head(sample: Any, rows: int = SAMPLE_ROWS) -> Any:
    """The first rows of a batch (the value itself when it has no batch axis)."""
    if hasattr(sample, "iloc"):
        return sample.iloc[:rows]
    if hasattr(sample, "ndim") and hasattr(sample, "shape"):
        return sample[:rows] if sample.ndim >= 1 else sample
    if isinstance(sample, list):
        return sample[:rows]
    return sample


def _batch_schema(sample: Any) -> DataType:
    return infer_data_type(sample).batch_free()


def infer_signature(handler: ModelHandler, model: Any, method: str, sample: Any) -> Signature:
    """Describe one method: its argument from ``sample``, its result by calling it."""
    if sample is None:
        return Signature(name=method, args=[Argument(name="data", type_=UnspecifiedType())],
                         returns=UnspecifiedType())
    arg_type = _batch_schema(sample)
    returns: DataType = UnspecifiedType()
    columns: list[str] | None = None
    try:
        with warnings.catch_warnings():
            # the model's own warnings on a few sample rows ("divide by zero in log" from
            # predict_log_proba, "X does not have valid feature names") are not the user's
            warnings.simplefilter("ignore")
            result = handler.call(model, method, head(sample))
    except Exception as exc:  # a method that cannot run on the sample still gets recorded
        warnings.warn(f"could not call {method} on the sample to infer its output: "
                      f"{type(exc).__name__}: {exc}", stacklevel=3)
    else:
        try:
            returns = _batch_schema(result)
        except UnsupportedObjectError:
            returns = UnspecifiedType()
        columns = handler.output_columns(model, method, result)
    return Signature(name=method, args=[Argument(name="data", type_=arg_type)], returns=returns,
                     output_columns=columns)


def infer_model_type(model: Any, sample_data: Any = None) -> tuple[ModelHandler, ModelType]:
    """Pick the handler for ``model`` and describe its methods.

    Example:
        >>> _, mt = infer_model_type(lambda x: [v * 2 for v in x], sample_data=[1, 2])
        >>> mt.type, list(mt.methods), mt.methods["__call__"].returns.describe()
        ('callable', ['__call__'], 'list[int]')
    """
    handler = find_handler(model)
    if handler is None:
        raise UnsupportedObjectError(
            f"{type(model).__module__}.{type(model).__qualname__} is not a model mlem_lib "
            "knows: expected a scikit-learn estimator, an xgboost/lightgbm model, a function "
            "or an object with predict-like methods")
    sample = sample_data if sample_data is not None else handler.default_input(model)
    methods = {m: infer_signature(handler, model, m, sample) for m in handler.methods(model)}
    return handler, ModelType(type=handler.model_type(model), methods=methods,
                              io=ModelIO(type=handler.io_type(model)))
