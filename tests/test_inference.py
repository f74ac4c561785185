"""Inferring a model's metadata: signatures from a sample, quietly."""

from __future__ import annotations

import warnings

import mlem_lib.api as mlem


def test_model_warnings_on_the_sample_are_silenced(iris, iris_rf, tmp_path):
    X, _ = iris
    # a forest's zero probabilities make predict_log_proba warn "divide by zero in log"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        iris_rf.predict_log_proba(X.head(5))
    assert any("divide by zero" in str(w.message) for w in caught)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta = mlem.save(iris_rf, str(tmp_path / "rf"), sample_data=X)
    assert [str(w.message) for w in caught] == []
    assert meta.model_type.methods["predict_log_proba"].returns.describe() != "unspecified"
    # the user's own warning filters are back in place afterwards
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        iris_rf.predict_log_proba(X.head(5))
    assert caught


def test_a_method_that_fails_on_the_sample_still_warns(tmp_path):
    class Model:
        def predict(self, xs):
            return [x * 2 for x in xs]

        def predict_proba(self, xs):
            raise ValueError("no probabilities here")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta = mlem.save(Model(), str(tmp_path / "m"), sample_data=[1, 2])
    assert any("could not call predict_proba" in str(w.message) for w in caught)
    assert meta.model_type.methods["predict"].returns.describe() == "list[int]"
