"""xgboost: the scikit-learn API (pickled) and raw Boosters (xgboost's own JSON format)."""

from __future__ import annotations

from typing import IO, Any

from mlem_lib.models.base import PICKLE_IOS, ModelHandler


class XGBoostHandler(ModelHandler):
    types = ("xgboost",)

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

        return "xgboost_json" if isinstance(obj, xgboost.Booster) else "pickle"

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        import xgboost

        if isinstance(obj, xgboost.Booster):
            f.write(bytes(obj.save_raw(raw_format="json")))
        else:
            super().dump(obj, f)

    def load(self, data: bytes, io_type: str) -> Any:
        if io_type in PICKLE_IOS:
            return super().load(data, io_type)
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(data))
        return booster

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
        return ["xgboost", "numpy"]


HANDLER = XGBoostHandler()
