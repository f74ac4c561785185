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
from mlem_lib.meta import Argument, ModelType, Signature
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


#: the largest example row (JSON bytes) kept in the metadata for /docs and smoke tests
MAX_EXAMPLE_BYTES = 4096


def example_of(arg_type: DataType, sample: Any) -> Any:
    """The first row of ``sample`` in its JSON form (``None`` when it cannot be written or
    is bigger than :data:`MAX_EXAMPLE_BYTES`).

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"x": [1.5, 2.5]})
        >>> example_of(infer_data_type(frame), frame)
        {'values': [{'x': 1.5}]}
    """
    if isinstance(arg_type, UnspecifiedType):
        return None
    try:
        import orjson

        from mlem_lib.data.media import encode_nonfinite

        value = encode_nonfinite(arg_type.to_json(arg_type.validate_value(head(sample, 1))))
        if len(orjson.dumps(value)) > MAX_EXAMPLE_BYTES:
            return None
    except Exception:  # an example is a nicety: a sample that cannot give one gives none
        return None
    return value


def declared_schema(value: Any) -> DataType:
    """A schema given at save (``input_schema=``): a data type as it is, a sample (data) or
    a mapping in the ``.mlem`` layout described.

    Raises:
        UnsupportedObjectError: the value is neither.

    Example:
        >>> declared_schema([1.0, 2.0]).describe(), declared_schema({"type": "primitive",
        ...                                                          "ptype": "int"}).describe()
        ('list[float]', 'int')
    """
    from mlem_lib.data.base import parse_data_type

    if isinstance(value, DataType):
        return value
    if isinstance(value, dict) and isinstance(value.get("type"), str) and not any(
            hasattr(v, "shape") for v in value.values()):
        try:
            return parse_data_type(value)
        except Exception:  # a dict of data that happens to have a "type" key
            pass
    return _batch_schema(value)


def infer_signature(handler: ModelHandler, model: Any, method: str, sample: Any,
                    schema: DataType | None = None, keep_example: bool = True) -> Signature:
    """Describe one method: its argument from ``schema`` (declared) or ``sample``, its result
    by calling it on a few sample rows (or on the schema's example when only ``schema`` is
    given). The first sample row is kept as the method's example unless ``keep_example`` is
    off."""
    if sample is None and schema is None:
        return Signature(name=method, args=[Argument(name="data", type_=UnspecifiedType())],
                         returns=UnspecifiedType())
    arg_type = schema if schema is not None else _batch_schema(sample)
    example = example_of(arg_type, sample) if keep_example and sample is not None else None
    if sample is None:
        try:
            sample = arg_type.example()
        except Exception:  # no example from this schema: the result type stays unknown
            sample = None
    returns: DataType = UnspecifiedType()
    columns: list[str] | None = None
    try:
        if sample is None:
            raise ValueError("the declared schema gives no example to call it on")
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
    return Signature(name=method, args=[Argument(name="data", type_=arg_type, example=example)],
                     returns=returns, output_columns=columns)


def _chosen_methods(handler: ModelHandler, model: Any, methods: list[str] | None) -> list[str]:
    """The methods to expose: all that the handler finds, or ``methods`` (checked)."""
    found = handler.methods(model)
    if methods is None:
        return found
    from mlem_lib.errors import MethodNotFoundError
    from mlem_lib.meta import public_name

    chosen: list[str] = []
    for name in methods:
        own = next((m for m in found if m == name or public_name(m) == name), None)
        if own is None and name != "__call__" and callable(getattr(model, name, None)):
            own = name  # any other method of the object
        if own is None:
            raise MethodNotFoundError(f"the model has no method {name!r} to expose (it has: "
                                      f"{', '.join(public_name(m) for m in found) or 'none'})")
        if own not in chosen:
            chosen.append(own)
    if not chosen:
        raise MethodNotFoundError("methods= is empty: name at least one method to expose")
    return chosen


def infer_model_type(model: Any, sample_data: Any = None, *, input_schema: Any = None,
                     methods: list[str] | None = None,
                     keep_example: bool = True) -> tuple[ModelHandler, ModelType]:
    """Pick the handler for ``model`` and describe its methods.

    Args:
        model: the model object.
        sample_data: example input; gives the argument schema and the return schema.
        input_schema: a declared argument schema instead of the sample's: a data type, a
            sample, or a mapping of method name to either.
        methods: the methods to expose (default: every predict-like method found).
        keep_example: keep the first sample row as each method's example.

    Example:
        >>> _, mt = infer_model_type(lambda x: [v * 2 for v in x], sample_data=[1, 2])
        >>> mt.type, list(mt.methods), mt.methods["__call__"].returns.describe()
        ('callable', ['__call__'], 'list[int]')
    """
    from mlem_lib.meta import public_name

    handler = find_handler(model)
    if handler is None:
        raise UnsupportedObjectError(
            f"{type(model).__module__}.{type(model).__qualname__} is not a model mlem_lib "
            "knows: expected a scikit-learn estimator, an xgboost/lightgbm model, a function "
            "or an object with predict-like methods")
    chosen = _chosen_methods(handler, model, methods)
    own = handler.signatures(model, sample_data) if input_schema is None else None
    if own is not None:  # the model says its schemas (an ONNX graph)
        return handler, ModelType(type=handler.model_type(model),
                                  methods={m: own[m] for m in chosen if m in own},
                                  io=handler.model_io(model))
    names = set(chosen) | {public_name(m) for m in chosen}
    per_method = (isinstance(input_schema, dict) and bool(input_schema)
                  and not isinstance(input_schema.get("type"), str)
                  and set(input_schema) <= names)
    fallback: list[Any] = []  # the handler's guess, made once and only when needed
    signatures = {}
    for m in chosen:
        declared = input_schema
        if per_method:
            declared = input_schema.get(m, input_schema.get(public_name(m)))
        schema = declared_schema(declared) if declared is not None else None
        sample = sample_data
        if sample is None and schema is None:
            if not fallback:
                fallback.append(handler.default_input(model))
            sample = fallback[0]
        signatures[m] = infer_signature(handler, model, m, sample, schema, keep_example)
    return handler, ModelType(type=handler.model_type(model), methods=signatures,
                              io=handler.model_io(model))
