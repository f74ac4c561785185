"""CatBoost: ``CatBoostClassifier``, ``CatBoostRegressor`` and ``CatBoost``, in CatBoost's own
``.cbm`` format.

The ``.mlem`` file records the estimator class and the categorical features under
``model_type.io``::

    io: {type: catboost_cbm, estimator: CatBoostClassifier, cat_features: [city, plan]}

The categorical features are the model's own (``get_cat_feature_indices``), by name; with
a sample DataFrame their columns keep the sample's dtypes (text, or integer codes). A
categorical value that CatBoost cannot take (a missing value, a float) is a
:class:`~mlem_lib.errors.SchemaError` naming the column, not a crash inside CatBoost.
Models without categorical features export to ONNX with CatBoost's own exporter
(:func:`to_onnx`).

Example:
    >>> import pandas as pd
    >>> from catboost import CatBoostClassifier
    >>> X = pd.DataFrame({"city": ["paris", "rome"] * 10, "age": list(range(20))})
    >>> y = [0, 1] * 10
    >>> model = CatBoostClassifier(iterations=5, verbose=0, cat_features=["city"],
    ...                            allow_writing_files=False).fit(X, y)
    >>> HANDLER.model_io(model).cat_features
    ['city']
"""

from __future__ import annotations

import os
import tempfile
from typing import IO, TYPE_CHECKING, Any

from mlem_lib.errors import MetadataError, SchemaError
from mlem_lib.models.base import ModelHandler

if TYPE_CHECKING:
    from mlem_lib.build.onnx_convert import Conversion
    from mlem_lib.meta import ModelIO
    from mlem_lib.runner import LoadedModel

IO_TYPE = "catboost_cbm"
CLASSIFICATION_LOSSES = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll")
ESTIMATORS = ("CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker", "CatBoost")


def _catboost() -> Any:
    from mlem_lib.extras import require

    return require("catboost", extra="catboost", feature="CatBoost models")


def cat_feature_names(model: Any) -> list[str]:
    """The model's categorical features, by name (by position when it has no names)."""
    indices = list(model.get_cat_feature_indices())
    names = list(getattr(model, "feature_names_", None) or [])
    return [str(names[i]) if i < len(names) else str(i) for i in indices]


class CatBoostHandler(ModelHandler):
    """``catboost``: CatBoost models in their native ``.cbm`` format."""

    types = ("catboost",)
    file_suffixes = (".cbm",)

    def matches(self, obj: Any) -> bool:
        return isinstance(obj, _catboost().CatBoost)

    def import_file(self, path: str) -> Any:
        """A model from CatBoost's ``.cbm`` file, as a classifier when its loss function is
        a classification one (so ``predict_proba`` is there), else a regressor."""
        catboost = _catboost()
        probe = catboost.CatBoost().load_model(path)
        loss = str(probe.get_all_params().get("loss_function", ""))
        kind = "CatBoostClassifier" if loss.split(":")[0] in CLASSIFICATION_LOSSES \
            else "CatBoostRegressor"
        return getattr(catboost, kind)().load_model(path)

    def methods(self, obj: Any) -> list[str]:
        return [m for m in ("predict", "predict_proba", "predict_log_proba")
                if callable(getattr(obj, m, None))]

    def io_type(self, obj: Any) -> str:
        return IO_TYPE

    def model_io(self, obj: Any) -> ModelIO:
        from mlem_lib.meta import ModelIO

        name = type(obj).__name__
        return ModelIO.model_validate({
            "type": IO_TYPE, "estimator": name if name in ESTIMATORS else "CatBoost",
            "cat_features": cat_feature_names(obj)})

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        # CatBoost writes .cbm files to a path only
        with tempfile.TemporaryDirectory(prefix="mlem-catboost-") as tmp:
            path = os.path.join(tmp, "model.cbm")
            obj.save_model(path, format="cbm")
            with open(path, "rb") as src:
                f.write(src.read())

    def load(self, data: bytes, io_type: str) -> Any:
        return self._load(data, io_type, "CatBoost")

    def load_file(self, data: bytes, io: ModelIO, device: str | None = None) -> Any:
        return self._load(data, io.type, str(getattr(io, "estimator", "CatBoost")))

    def _load(self, data: bytes, io_type: str, estimator: str) -> Any:
        if io_type != IO_TYPE:
            raise MetadataError(f"unknown model io type {io_type!r} for catboost")
        if estimator not in ESTIMATORS:
            raise MetadataError(f"unknown CatBoost estimator {estimator!r} (known: "
                                f"{', '.join(ESTIMATORS)})")
        model = getattr(_catboost(), estimator)()
        return model.load_model(blob=data)

    def call(self, obj: Any, method: str, data: Any) -> Any:
        if hasattr(data, "iloc"):
            _check_categories(data, cat_feature_names(obj))
        return super().call(obj, method, data)

    def default_input(self, obj: Any) -> Any:
        import pandas as pd

        names = list(getattr(obj, "feature_names_", None) or [])
        if not names:
            return None
        cats = set(cat_feature_names(obj))
        return pd.DataFrame({n: ["a"] if n in cats else [0.0] for n in names})

    def extra_modules(self, obj: Any) -> list[str]:
        return ["catboost", "numpy"]


def _check_categories(frame: Any, cat_features: list[str]) -> None:
    """Categorical columns must hold text or integers: CatBoost refuses anything else."""
    for name in cat_features:
        if name not in frame.columns:
            continue
        column = frame[name]
        if column.dtype.kind in "iub":
            continue
        bad = column[[not isinstance(v, str | int) for v in column]]
        if len(bad):
            raise SchemaError(f"column '{name}' is categorical: expected text or integer "
                              f"values, got {bad.iloc[0]!r}", field=name,
                              expected="text or integer", got=repr(bad.iloc[0]))


def to_onnx(loaded: LoadedModel, opset: int | None) -> Conversion:
    """Export with CatBoost's own ONNX exporter (models without categorical features).

    Raises:
        BuildError: the model has categorical features (CatBoost cannot export them).
    """
    import importlib.metadata

    import onnx

    from mlem_lib.build.onnx_convert import Conversion, map_outputs, plan_inputs, strip_zipmap
    from mlem_lib.errors import BuildError

    model = loaded.model
    cats = cat_feature_names(model)
    if cats:
        raise BuildError("CatBoost exports models with categorical features to ONNX only "
                         f"without them (this one has: {', '.join(cats)})")
    inputs = plan_inputs(loaded)
    with tempfile.TemporaryDirectory(prefix="mlem-catboost-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        try:
            model.save_model(path, format="onnx")
        except Exception as exc:
            raise BuildError(f"CatBoost cannot export this model to ONNX: {exc}") from exc
        graph = onnx.load(path)
    strip_zipmap(graph)
    # CatBoost names the graph's input "features": the feed only needs the one matrix
    methods, skipped = map_outputs(graph, list(loaded.meta.model_type.methods))
    version = importlib.metadata.version("catboost")
    return Conversion(graph, inputs.feed, inputs.columns, methods, skipped,
                      f"catboost {version}")


HANDLER = CatBoostHandler()
