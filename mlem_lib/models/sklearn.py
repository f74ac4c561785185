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
        """Build a one-row input from what the fitted estimator remembers about its features.

        Without a sample, a Pipeline still gets the columns it was fitted on
        (``feature_names_in_``), each with a value its first step knows: a category of
        its encoder (so a string column is a string column), a word of its vectorizer, a
        fill value of its imputer; 0.0 for the others.

        Example:
            >>> import pandas as pd
            >>> from sklearn.compose import make_column_transformer
            >>> from sklearn.linear_model import LogisticRegression
            >>> from sklearn.pipeline import make_pipeline
            >>> from sklearn.preprocessing import OneHotEncoder
            >>> X = pd.DataFrame({"city": ["a", "b"], "x": [1.0, 2.0]})
            >>> pipe = make_pipeline(make_column_transformer((OneHotEncoder(), ["city"]),
            ...                      remainder="passthrough"), LogisticRegression())
            >>> HANDLER.default_input(pipe.fit(X, [0, 1])).to_dict("records")
            [{'city': 'a', 'x': 0.0}]
        """
        import numpy as np

        names = getattr(obj, "feature_names_in_", None)
        if names is not None:
            import pandas as pd

            columns = [str(n) for n in names]
            known = _known_values(obj, columns)
            return pd.DataFrame({n: [known.get(n, 0.0)] for n in columns})
        n = getattr(obj, "n_features_in_", None)
        if isinstance(n, int):
            return np.zeros((1, n))
        return None


def _scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _known_values(est: Any, columns: list[str]) -> dict[str, Any]:
    """A valid value per input column, from what the step that reads it learned."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(est, Pipeline):
        return _known_values(est.steps[0][1], columns) if est.steps else {}
    if isinstance(est, ColumnTransformer):
        out: dict[str, Any] = {}
        for _name, step, cols in getattr(est, "transformers_", []):
            if isinstance(step, str):  # "drop" / "passthrough"
                continue
            if isinstance(cols, str):  # one column given as 1-D input: a text vectorizer
                vocabulary = getattr(step, "vocabulary_", None)
                if vocabulary:
                    out[cols] = str(next(iter(vocabulary)))
                continue
            if isinstance(cols, list | tuple) and all(isinstance(c, str) for c in cols):
                out.update(_known_values(step, list(cols)))
        return out
    for attribute in ("categories_", "statistics_"):  # encoders, imputers
        learned = getattr(est, attribute, None)
        if learned is None or len(learned) != len(columns):
            continue
        out = {}
        for column, values in zip(columns, learned, strict=True):
            candidates = values if attribute == "categories_" else [values]
            first = next((v for v in candidates if v == v and v is not None), None)
            if first is not None:
                out[column] = _scalar(first)
        return out
    return {}


HANDLER = SklearnHandler()
