"""LightGBM: the scikit-learn API (pickled) and raw Boosters (LightGBM's text format)."""

from __future__ import annotations

from typing import IO, Any

from mlem_lib.models.base import PICKLE_IOS, ModelHandler


class LightGBMHandler(ModelHandler):
    types = ("lightgbm",)

    def matches(self, obj: Any) -> bool:
        import lightgbm

        return isinstance(obj, lightgbm.Booster | lightgbm.LGBMModel)

    def methods(self, obj: Any) -> list[str]:
        import lightgbm

        if isinstance(obj, lightgbm.Booster):
            return ["predict"]
        return super().methods(obj)

    def io_type(self, obj: Any) -> str:
        import lightgbm

        return "lightgbm_txt" if isinstance(obj, lightgbm.Booster) else "pickle"

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        import lightgbm

        if isinstance(obj, lightgbm.Booster):
            f.write(obj.model_to_string().encode())
        else:
            super().dump(obj, f)

    def load(self, data: bytes, io_type: str) -> Any:
        if io_type in PICKLE_IOS:
            return super().load(data, io_type)
        import lightgbm

        return lightgbm.Booster(model_str=data.decode())

    def default_input(self, obj: Any) -> Any:
        import lightgbm
        import numpy as np

        booster = obj if isinstance(obj, lightgbm.Booster) else obj.booster_
        return np.zeros((1, booster.num_feature()))

    def extra_modules(self, obj: Any) -> list[str]:
        return ["lightgbm", "numpy"]

    def import_file(self, path: str) -> Any:
        """A Booster from LightGBM's ``save_model`` text file (``mlem import --type
        lightgbm model.txt``: ``.txt`` is too common a suffix to claim)."""
        import lightgbm

        return lightgbm.Booster(model_file=path)


HANDLER = LightGBMHandler()
