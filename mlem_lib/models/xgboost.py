"""xgboost: the scikit-learn API and raw Boosters, both in xgboost's own JSON format.

A scikit-learn estimator (``XGBClassifier``, ``XGBRegressor``...) is written with its
``save_model``, which keeps its scikit-learn attributes, plus one booster attribute naming
its class, so ``load`` rebuilds the same estimator; nothing is pickled. Subclasses defined
outside xgboost are pickled (their class could not be rebuilt from the JSON), and
``mlem show`` says which.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import IO, Any

from mlem_lib.models.base import PICKLE_IOS, ModelHandler

NATIVE = "xgboost_json"
#: the booster attribute naming the scikit-learn class of a natively saved estimator
CLASS_ATTR = "mlem_lib_estimator"


def _native_class(obj: Any) -> str | None:
    """``xgboost.sklearn.XGBClassifier`` for xgboost's own estimators, else ``None``."""
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}" if cls.__module__.startswith(
        "xgboost.") else None


class XGBoostHandler(ModelHandler):
    types = ("xgboost",)
    file_suffixes = (".ubj", ".xgb")  # JSON models too, with `mlem import --type xgboost`

    def matches(self, obj: Any) -> bool:
        import xgboost

        return isinstance(obj, xgboost.Booster | xgboost.XGBModel)

    def methods(self, obj: Any) -> list[str]:
        import xgboost

        if isinstance(obj, xgboost.Booster):
            return ["predict"]
        return super().methods(obj)

    def io_type(self, obj: Any) -> str:
        import xgboost

        if isinstance(obj, xgboost.Booster) or _native_class(obj) is not None:
            return NATIVE
        return "pickle"

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        import xgboost

        if isinstance(obj, xgboost.Booster):
            f.write(bytes(obj.save_raw(raw_format="json")))
            return
        name = _native_class(obj)
        if name is None:
            super().dump(obj, f)
            return
        booster = obj.get_booster()
        booster.set_attr(**{CLASS_ATTR: name})
        try:
            with tempfile.TemporaryDirectory(prefix="mlem-xgb-") as folder:
                path = os.path.join(folder, "model.json")
                obj.save_model(path)  # keeps the scikit-learn attributes
                with open(path, "rb") as src:
                    f.write(src.read())
        finally:
            booster.set_attr(**{CLASS_ATTR: None})

    def load(self, data: bytes, io_type: str) -> Any:
        if io_type in PICKLE_IOS:
            return super().load(data, io_type)
        import importlib

        import xgboost

        name = json.loads(data).get("learner", {}).get("attributes", {}).get(CLASS_ATTR)
        if not name:
            booster = xgboost.Booster()
            booster.load_model(bytearray(data))
            return booster
        module, _, qualname = name.partition(":")
        if not module.startswith("xgboost."):
            from mlem_lib.errors import MetadataError

            raise MetadataError(f"the saved xgboost model names the class {name!r}, which is "
                                "not one of xgboost's")
        model = getattr(importlib.import_module(module), qualname)()
        model.load_model(bytearray(data))
        model.get_booster().set_attr(**{CLASS_ATTR: None})
        return model

    def call(self, obj: Any, method: str, data: Any) -> Any:
        import xgboost

        if isinstance(obj, xgboost.Booster):
            if not isinstance(data, xgboost.DMatrix):
                data = xgboost.DMatrix(data)
            return obj.predict(data)
        return super().call(obj, method, data)

    def default_input(self, obj: Any) -> Any:
        import numpy as np
        import xgboost

        booster = obj if isinstance(obj, xgboost.Booster) else obj.get_booster()
        names = booster.feature_names
        if names:
            import pandas as pd

            return pd.DataFrame({n: [0.0] for n in names})
        return np.zeros((1, booster.num_features()))

    def extra_modules(self, obj: Any) -> list[str]:
        import xgboost

        # the scikit-learn API needs scikit-learn where it is loaded
        return ["xgboost", "numpy"] if isinstance(obj, xgboost.Booster) else [
            "xgboost", "numpy", "sklearn"]

    def import_file(self, path: str) -> Any:
        """A Booster from xgboost's ``save_model`` file (UBJSON or JSON)."""
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(path)
        return booster


HANDLER = XGBoostHandler()
