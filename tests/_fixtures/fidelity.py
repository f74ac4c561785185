"""The models a new user brings (issue 13), saved once per session (loaded by conftest.py).

Every model is defined inside the fixture, so cloudpickle ships it by value and a server
process, a pip package or an image loads it without this test tree.

* ``pipeline``: a scikit-learn Pipeline with a ColumnTransformer (OneHotEncoder on the
  string columns ``city`` and ``plan``, scaling of ``x``) and a LogisticRegression;
* ``schedule``: a class model on a naive ``datetime64`` column, a time-zone-aware one
  and a ``bool`` column (hours between booking and departure, +100 for express);
* ``xgboost`` and ``lightgbm``: iris classifiers of their scikit-learn APIs;
* ``text``: a TfidfVectorizer + LogisticRegression pipeline saved with a list of texts;
* ``function``: a plain function of a float DataFrame;
* ``dict_function``: a function returning ``{"label": array, "score": array}``;
* ``numpy``: a LogisticRegression fitted on an ndarray;
* ``echo``: a function that reports every cell of a table with every dtype (category,
  Int64, boolean, string, naive and aware date-times): what it was given, exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

CITIES = ["Paris", "Berlin", "123", "Lyon"]


def pipeline_frame(n: int = 40) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows for the ColumnTransformer pipeline: string columns (one holds "123") and x."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "city": [CITIES[i % len(CITIES)] for i in range(n)],
        "plan": ["basic" if i % 3 else "pro" for i in range(n)],
        "x": rng.normal(size=n).round(3),
    })
    y = ((frame["city"] == "123") | (frame["x"] > 0.5)).astype(int).to_numpy()
    return frame, y


def schedule_frame() -> pd.DataFrame:
    """Naive and Europe/Paris date-times and a bool: what the ``schedule`` model reads."""
    return pd.DataFrame({
        "booked": pd.to_datetime(["2024-03-01 08:00", "2024-03-02 09:30", "2024-07-01 23:15"]),
        "departs": pd.to_datetime(["2024-03-01 12:00", "2024-03-02 18:15",
                                   "2024-07-02 06:00"]).tz_localize("Europe/Paris"),
        "express": [True, False, True],
    })


def echo_frame() -> pd.DataFrame:
    """A table with every dtype the data types must carry exactly, missing values included."""
    return pd.DataFrame({
        "city": pd.Categorical(["Paris", "Berlin", None, "Paris"],
                               categories=["Berlin", "Paris", "Rome"]),
        "count": pd.array([1, None, 3, -4], dtype="Int64"),
        "ok": pd.array([True, None, False, True], dtype="boolean"),
        "note": pd.array(["a", None, "123", "NA"], dtype="string"),
        "code": pd.Series(["007", "x", "a, b", "1.50"], dtype="str"),
        "when": pd.to_datetime(["2024-01-01 10:00:00", None, "2024-06-30 23:59:59.5",
                                "1999-12-31 00:00:00"], format="ISO8601"),
        "at": pd.to_datetime(["2024-01-01 10:00", "2024-03-31 01:30", None,
                              "2024-10-27 03:00"]).tz_localize("Europe/Paris"),
        "x": [0.5, -1.25, 3.0, 1e-3],
        "flag": [True, False, True, False],
    })


@pytest.fixture(scope="session")
def fidelity_models(tmp_path_factory: pytest.TempPathFactory, iris) -> dict[str, Any]:
    """name -> {"path": saved path, "model": the object, "sample": its sample data}."""
    import lightgbm
    import xgboost
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import mlem_lib.api as mlem

    root: Path = tmp_path_factory.mktemp("fidelity_models")
    X, y = iris
    out: dict[str, Any] = {}

    def save(name: str, model: Any, sample: Any, **options: Any) -> None:
        path = str(root / name)
        mlem.save(model, path, sample_data=sample, **options)
        out[name] = {"path": path, "model": model, "sample": sample}

    frame, labels = pipeline_frame()
    pipeline = make_pipeline(
        ColumnTransformer([("onehot", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
                           ("scale", StandardScaler(), ["x"])]),
        LogisticRegression()).fit(frame, labels)
    save("pipeline", pipeline, frame)

    class Schedule:
        """Hours from booking (naive, read as UTC) to departure, +100 when express."""

        def predict(self, df: pd.DataFrame) -> np.ndarray:
            booked = df["booked"].dt.tz_localize("UTC")
            departs = df["departs"].dt.tz_convert("UTC")
            hours = (departs - booked).dt.total_seconds() / 3600
            return (hours + 100 * df["express"].astype(int)).to_numpy()

    save("schedule", Schedule(), schedule_frame())

    names = np.array(["setosa", "versicolor", "virginica"])[y]
    save("xgboost", xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y), X)
    save("lightgbm", lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, names), X)

    texts = ["good movie", "bad movie", "great film", "awful film", "good fun", "bad acting"]
    text = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts,
                                                                      [1, 0, 1, 0, 1, 0])
    save("text", text, texts)

    def area(df: pd.DataFrame) -> pd.Series:
        return df["sepal_length"] * df["sepal_width"]

    save("function", area, X)

    def label_and_score(df: pd.DataFrame) -> dict[str, np.ndarray]:
        return {"label": (df["petal_length"] > 2.5).to_numpy(),
                "score": (df["petal_length"] * 10).to_numpy()}

    save("dict_function", label_and_score, X)
    save("numpy", LogisticRegression(max_iter=500).fit(X.to_numpy(), y), X.to_numpy())

    def echo_cell(value: Any) -> str:
        """One cell as text that tells types apart: ``Timestamp(...)`` is not ``'...'``."""
        if value is None or value is pd.NA or value is pd.NaT:
            return "<missing>"
        if isinstance(value, float) and value != value:
            return "<missing>"
        if isinstance(value, pd.Timestamp):
            return f"Timestamp({value.isoformat()})"
        if isinstance(value, np.generic):
            value = value.item()
        return f"{type(value).__name__}({value!r})"

    def echo(df: pd.DataFrame) -> list[str]:
        dtypes = "/".join(str(d) for d in df.dtypes)
        return [f"{dtypes}|" + "|".join(echo_cell(v) for v in row)
                for row in df.itertuples(index=False)]

    save("echo", echo, echo_frame())
    return out
