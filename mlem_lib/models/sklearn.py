"""scikit-learn estimators and pipelines."""

from __future__ import annotations

from typing import Any

from mlem_lib.models.base import ModelHandler


class SklearnHandler(ModelHandler):
    types = ("sklearn", "sklearn_pipeline")

    def matches(self, obj: Any) -> bool:
        from sklearn.base import BaseEstimator

        return isinstance(obj, BaseEstimator)

    def model_type(self, obj: Any) -> str:
        from sklearn.pipeline import Pipeline

        return "sklearn_pipeline" if isinstance(obj, Pipeline) else "sklearn"

    def default_input(self, obj: Any) -> Any:
        """Build a one-row input from what the fitted estimator remembers about its features."""
        import numpy as np

        names = getattr(obj, "feature_names_in_", None)
        if names is not None:
            import pandas as pd

            return pd.DataFrame({str(n): [0.0] for n in names})
        n = getattr(obj, "n_features_in_", None)
        if isinstance(n, int):
            return np.zeros((1, n))
        return None


HANDLER = SklearnHandler()
