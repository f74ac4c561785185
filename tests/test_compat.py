"""Reading files written by the real MLEM (0.4.14 and 0.2.9); see tests/fixtures/mlem/README.md."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

import mlem_lib.api as mlem
from mlem_lib.compat.mlem import normalize
from mlem_lib.errors import ArtifactIntegrityError, MetadataError
from tests.conftest import FIXTURES

MLEM_DIR = FIXTURES / "mlem"
MANIFEST = json.loads((MLEM_DIR / "MANIFEST.json").read_text())
MODELS = {k: v for k, v in MANIFEST["fixtures"].items() if v["object_type"] == "model"}
DATA = {k: v for k, v in MANIFEST["fixtures"].items() if v["object_type"] == "data"}


def make_input(name: str):
    raw = MANIFEST["inputs"][name]
    if isinstance(raw, dict) and "rows" in raw:
        return pd.DataFrame(raw["rows"], columns=raw["columns"]).astype(
            dict(zip(raw["columns"], raw["dtypes"], strict=True)))
    if name.endswith("ndarray"):
        return np.asarray(raw)
    return raw


def as_plain(value):
    if isinstance(value, pd.DataFrame):
        return value.to_numpy().tolist()
    if isinstance(value, dict) and value.get("__kind__") == "dataframe":
        return value["rows"]
    return np.asarray(value).tolist()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_mlem_model_predictions_match_real_mlem(name):
    fixture = MODELS[name]
    path = str(MLEM_DIR / fixture["meta"])
    meta = mlem.load_meta(path)
    assert meta.model_type.type == fixture["kind"]
    data = make_input(fixture["input"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saved with older numpy/pandas/sklearn
        for method, expected in fixture["expected"].items():
            got = mlem.apply(path, data, method=method)
            np.testing.assert_allclose(np.asarray(as_plain(got), dtype=float),
                                       np.asarray(as_plain(expected), dtype=float), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(DATA))
def test_mlem_data_objects_load(name):
    fixture = DATA[name]
    value = mlem.load(str(MLEM_DIR / fixture["meta"]))
    assert as_plain(value) == as_plain(fixture["expected"]) if fixture["kind"] != "dict" \
        else value == fixture["expected"]


def test_processors_layout_is_read_as_model_type():
    meta = mlem.load_meta(str(MLEM_DIR / "sklearn_lr" / "model"))
    assert set(meta.model_type.methods) == {"predict", "predict_proba"}
    assert meta.model_type.methods["predict"].args[0].type_.columns[0] == "sepal_length"
    assert meta.model_dump()["call_orders"]["predict"] == [["model", "predict"]]
    assert meta.artifacts["data"].hash_algorithm == "md5"
    assert {r.module for r in meta.python_requirements()} == {"sklearn", "numpy", "pandas"}


def test_old_requirements_warn_on_load():
    with pytest.warns(UserWarning, match="scikit-learn"):
        mlem.load(str(MLEM_DIR / "sklearn_lr" / "model"))


def test_callable_with_shipped_source_loads_without_the_module():
    meta = mlem.load_meta(str(MLEM_DIR / "callable_func" / "model"))
    assert [c.name for c in meta.custom_requirements()] == ["fixture_funcs"]
    assert mlem.apply(str(MLEM_DIR / "callable_func" / "model"), [1.0, 2.0, 3.0, 4.0, 5.0],
                      method="predict") == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_md5_hash_of_mlem_files_is_checked(tmp_path):
    for name in ("model", "model.mlem"):
        shutil.copy(MLEM_DIR / "sklearn_lr" / name, tmp_path / name)
    body = bytearray((tmp_path / "model").read_bytes())
    body[100] ^= 1
    (tmp_path / "model").write_bytes(bytes(body))
    with pytest.raises(ArtifactIntegrityError):
        mlem.load(str(tmp_path / "model"))


def test_normalize_rejects_files_without_model_description():
    with pytest.raises(MetadataError, match="neither"):
        normalize({"object_type": "model", "artifacts": {}})
