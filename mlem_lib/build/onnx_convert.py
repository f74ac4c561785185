"""Converting a loaded model to an ONNX graph, one function per framework.

:func:`convert` picks the converter by the saved model's framework (``model_type.type``):

==================  =========================================================
framework           converter
==================  =========================================================
sklearn             ``skl2onnx`` (estimators and pipelines, ColumnTransformer)
lightgbm            ``onnxmltools.convert_lightgbm``
xgboost             ``onnxmltools.convert_xgboost``
catboost            CatBoost's own ``save_model(format="onnx")``
torch               ``torch.onnx.export`` (:mod:`mlem_lib.build.onnx_torch`)
==================  =========================================================

Each returns a :class:`Conversion`: the graph, how the model's argument feeds it (one
``float32`` matrix of the table's columns, or one ``(n, 1)`` input per column for
pipelines that pick columns by name or take text) and which graph output answers which
method. The caller (:mod:`mlem_lib.build.onnx`) checks the answers against the model's.

Example:
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mlem_lib.runner import LoadedModel
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    >>> loaded = LoadedModel.from_object(LogisticRegression().fit(X, [0, 0, 1, 1]), X)
    >>> c = convert(loaded)
    >>> c.feed, c.converter.split()[0], {m: s.outputs for m, s in c.methods.items()}
    ('matrix', 'skl2onnx', {'predict': ['label'], 'predict_proba': ['probabilities']})
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlem_lib.errors import BuildError
from mlem_lib.models.onnx import Feed, OnnxMethod

if TYPE_CHECKING:
    from mlem_lib.runner import LoadedModel

EXTRA = "onnx"


@dataclass
class Conversion:
    """What a converter made of a model.

    Attributes:
        graph: the ``onnx.ModelProto``.
        feed: how the model's argument becomes the graph's inputs (``matrix``, ``columns``
            or ``tensors``; see :mod:`mlem_lib.models.onnx`).
        columns: the table's columns in order (``matrix`` and ``columns`` feeds).
        methods: model method -> the graph outputs that answer it.
        skipped: model methods the graph does not answer -> why.
        converter: the converter and its version (``skl2onnx 1.20.0``).
    """

    graph: Any
    feed: Feed
    columns: list[str]
    methods: dict[str, OnnxMethod]
    skipped: dict[str, str] = field(default_factory=dict)
    converter: str = ""


@dataclass
class Inputs:
    """How the model's argument is laid out, from its saved schema."""

    feed: Feed
    columns: list[str]
    # (name, kind, shape): kind is "float", "int64" or "string"
    tensors: list[tuple[str, str, list[int | None]]]


def _require(module: str, feature: str) -> Any:
    from mlem_lib.extras import require

    return require(module, extra=EXTRA, feature=feature)


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return f"{dist} {importlib.metadata.version(dist)}"
    except importlib.metadata.PackageNotFoundError:
        return dist


def _column_kind(dtype: str) -> str:
    import numpy as np

    try:
        kind = np.dtype(dtype).kind
    except TypeError:  # str, string, category...: text
        return "string"
    return {"i": "int64", "u": "int64", "f": "float", "b": "float"}.get(kind, "string")


def plan_inputs(loaded: LoadedModel, by_column: bool = False) -> Inputs:
    """The graph inputs for the model's saved argument schema.

    A table of numeric columns becomes one ``float32`` matrix (``input``), unless
    ``by_column``, or a column holds text: then every column is its own ``(n, 1)`` input,
    named after the column. An array becomes one ``float32`` input of its shape.

    Raises:
        BuildError: the schema says nothing the graph's inputs can be made from.
    """
    arg = _argument_type(loaded)
    columns = [str(c) for c in getattr(arg, "columns", None) or []]
    if columns:
        kinds = [_column_kind(d) for d in getattr(arg, "dtypes", [])]
        if by_column or any(k == "string" for k in kinds):
            return Inputs("columns", columns, [(c, k, [None, 1]) for c, k in
                                               zip(columns, kinds, strict=True)])
        return Inputs("matrix", columns, [("input", "float", [None, len(columns)])])
    shape = getattr(arg, "shape", None)
    if shape:
        return Inputs("matrix" if len(shape) == 2 else "tensors", [],
                      [("input", "float", [None, *shape[1:]])])
    width = _default_width(loaded.model)
    if width is not None:
        return Inputs("matrix", [], [("input", "float", [None, width])])
    raise BuildError("the model was saved without sample data and its input width is "
                     "unknown: save it again with sample_data to export it to ONNX")


def _argument_type(loaded: LoadedModel) -> Any:
    for sig in loaded.meta.model_type.methods.values():
        if sig.args:
            return sig.args[0].type_
    return None


def _default_width(model: Any) -> int | None:
    for attr in ("n_features_in_", "n_features_"):
        value = getattr(model, attr, None)
        if isinstance(value, int):
            return value
    num_feature = getattr(model, "num_feature", None) or getattr(model, "num_features", None)
    if callable(num_feature):
        return int(num_feature())
    return None


def _onnxmltools_types(inputs: Inputs) -> list[tuple[str, Any]]:
    from onnxmltools.convert.common import data_types as dt

    classes = {"float": dt.FloatTensorType, "int64": dt.Int64TensorType,
               "string": dt.StringTensorType}
    return [(name, classes[kind](shape)) for name, kind, shape in inputs.tensors]


def _skl2onnx_types(inputs: Inputs) -> list[tuple[str, Any]]:
    from skl2onnx.common import data_types as dt

    classes = {"float": dt.FloatTensorType, "int64": dt.Int64TensorType,
               "string": dt.StringTensorType}
    return [(name, classes[kind](shape)) for name, kind, shape in inputs.tensors]


def map_outputs(graph: Any, methods: list[str], *,
                probabilities_answer_predict: bool = False) -> tuple[dict[str, OnnxMethod],
                                                                     dict[str, str]]:
    """Which graph output answers which model method, by the converters' output names.

    ``label`` answers ``predict`` and ``probabilities`` ``predict_proba`` (classifiers);
    ``variable`` answers ``predict`` (regressors) or ``transform`` (transformers);
    ``scores`` answers ``transform`` next to a ``label`` (clusterers). Methods left over
    are returned with the reason.

    Example:
        >>> class G:  # the shape of an onnx.ModelProto, for the example
        ...     class graph:
        ...         output = [type("O", (), {"name": n}) for n in ("label", "probabilities")]
        >>> mapped, skipped = map_outputs(G, ["predict", "predict_proba", "decision_function"])
        >>> sorted(mapped), skipped
        (['predict', 'predict_proba'], {'decision_function': 'the converter gives no output for it'})
    """  # noqa: E501
    names = [o.name for o in graph.graph.output]
    mapped: dict[str, str] = {}
    if "label" in names:
        mapped["predict"] = "label"
        if "scores" in names:
            mapped["transform"] = "scores"
    if "probabilities" in names:
        mapped["predict_proba"] = "probabilities"
        if probabilities_answer_predict:
            mapped["predict"] = "probabilities"
    if "variable" in names:
        mapped["predict" if "predict" in methods else "transform"] = "variable"
    if not mapped and len(names) == 1:
        mapped["predict" if "predict" in methods else "__call__"] = names[0]
    out = {m: OnnxMethod(outputs=[mapped[m]]) for m in methods if m in mapped}
    if "__call__" in methods and "__call__" not in out and "predict" in mapped:
        out["__call__"] = OnnxMethod(outputs=[mapped["predict"]])
    skipped = {m: "the converter gives no output for it" for m in methods if m not in out}
    return out, skipped


def free_batch_axis(graph: Any) -> None:
    """Make the first axis of every graph output free (``N``).

    Some converters declare a fixed batch of 1 on an output (LightGBM's ``label``), and
    ONNX Runtime then warns on every call with more rows.
    """
    for value in graph.graph.output:
        tensor = value.type.tensor_type
        if tensor.HasField("shape") and len(tensor.shape.dim):
            dim = tensor.shape.dim[0]
            dim.Clear()
            dim.dim_param = "N"


def strip_zipmap(graph: Any) -> None:
    """Replace ``ZipMap`` outputs (a list of dicts) by the probability tensor they wrap."""
    onnx = _require("onnx", "exporting models to ONNX")
    nodes = list(graph.graph.node)
    for node in nodes:
        if node.op_type != "ZipMap":
            continue
        source, target = node.input[0], node.output[0]
        graph.graph.node.remove(node)
        for out in graph.graph.output:
            if out.name == target:
                out.CopyFrom(onnx.helper.make_tensor_value_info(
                    target, onnx.TensorProto.FLOAT, [None, None]))
        graph.graph.node.append(onnx.helper.make_node("Identity", [source], [target]))


# --- the converters ---------------------------------------------------------------------

def _sklearn(loaded: LoadedModel, opset: int | None) -> Conversion:
    _require("skl2onnx", "exporting scikit-learn models to ONNX")
    from skl2onnx import convert_sklearn
    from sklearn.base import is_classifier

    from mlem_lib.serve.fastpath import uses_column_names

    model = loaded.model
    inputs = plan_inputs(loaded, by_column=uses_column_names(model))
    options = {"zipmap": False} if is_classifier(model) else None
    try:
        graph = convert_sklearn(model, initial_types=_skl2onnx_types(inputs),
                                options=options, target_opset=opset)
    except Exception as exc:
        raise BuildError(f"skl2onnx cannot convert this model: {_first_line(exc)}") from exc
    methods, skipped = map_outputs(graph, list(loaded.meta.model_type.methods))
    return Conversion(graph, inputs.feed, inputs.columns, methods, skipped,
                      _version("skl2onnx"))


def _boosting(loaded: LoadedModel, opset: int | None, framework: str, model: Any,
              convert_fn: Callable[..., Any], booster: type, **kwargs: Any) -> Conversion:
    """LightGBM and xgboost through onnxmltools: one float matrix in, ZipMaps removed."""
    inputs = plan_inputs(loaded)
    if inputs.feed == "columns":
        raise BuildError(f"{framework} models with text columns cannot be exported to ONNX")
    try:
        graph = convert_fn(model, initial_types=_onnxmltools_types(inputs),
                           target_opset=opset, **kwargs)
    except Exception as exc:
        raise BuildError(f"onnxmltools cannot convert this model: {_first_line(exc)}") from exc
    strip_zipmap(graph)
    # a raw Booster's predict gives the probabilities, the sklearn API's the labels
    methods, skipped = map_outputs(graph, list(loaded.meta.model_type.methods),
                                   probabilities_answer_predict=isinstance(model, booster))
    return Conversion(graph, inputs.feed, inputs.columns, methods, skipped,
                      _version("onnxmltools"))


def _lightgbm(loaded: LoadedModel, opset: int | None) -> Conversion:
    _require("onnxmltools", "exporting LightGBM models to ONNX")
    import lightgbm
    from onnxmltools import convert_lightgbm

    return _boosting(loaded, opset, "LightGBM", loaded.model, convert_lightgbm,
                     lightgbm.Booster, zipmap=False)


def _xgboost(loaded: LoadedModel, opset: int | None) -> Conversion:
    _require("onnxmltools", "exporting xgboost models to ONNX")
    import xgboost
    from onnxmltools import convert_xgboost

    model = copy.deepcopy(loaded.model)
    # onnxmltools reads features as f0, f1...: the graph takes the columns by position
    booster = model if isinstance(model, xgboost.Booster) else model.get_booster()
    booster.feature_names = None
    return _boosting(loaded, opset, "xgboost", model, convert_xgboost, xgboost.Booster)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


Converter = Callable[["LoadedModel", "int | None"], Conversion]

#: framework (``model_type.type``) -> converter; catboost, keras and torch register below
CONVERTERS: dict[str, Converter] = {
    "sklearn": _sklearn,
    "sklearn_pipeline": _sklearn,
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
}


def convert(loaded: LoadedModel, opset: int | None = None) -> Conversion:
    """Convert a loaded model to ONNX with its framework's converter.

    Raises:
        BuildError: no converter for the framework, or the converter failed.
        MissingExtraError: the converter is not installed (names the extra).
    """
    kind = loaded.meta.model_type.type
    converter = CONVERTERS.get(kind) or _extra_converter(kind)
    if converter is None:
        known = ", ".join(sorted({*CONVERTERS, *_EXTRA_CONVERTERS}))
        raise BuildError(f"no ONNX converter for {kind} models (ONNX export knows: {known})")
    conversion = converter(loaded, opset)
    free_batch_axis(conversion.graph)
    if not conversion.methods:
        raise BuildError(f"the ONNX graph of this {kind} model answers none of its methods "
                         f"({', '.join(loaded.meta.model_type.methods)})")
    return conversion


# converters living in the framework's own module: "module:function"
_EXTRA_CONVERTERS = {
    "catboost": "mlem_lib.models.catboost:to_onnx",
    "torch": "mlem_lib.build.onnx_torch:to_onnx",
}


def _extra_converter(kind: str) -> Converter | None:
    import importlib

    ref = _EXTRA_CONVERTERS.get(kind)
    if ref is None:
        return None
    module, _, name = ref.partition(":")
    try:
        fn: Converter | None = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    return fn
