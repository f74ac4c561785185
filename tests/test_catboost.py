"""CatBoost models (issue 14): native .cbm artifacts, categorical columns from the sample,
save -> serve -> apply -> docker."""

from __future__ import annotations

import uuid

import httpx
import numpy as np
import pandas as pd
import pytest

import mlem_lib.api as mlem
from mlem_lib.errors import BuildError, SchemaError
from mlem_lib.runner import LoadedModel
from tests.helpers import tabular

catboost = pytest.importorskip("catboost")


@pytest.fixture(scope="module")
def customers() -> tuple[pd.DataFrame, pd.Series]:
    return tabular.customers(200, seed=1)


@pytest.fixture(scope="module")
def saved_catboost(tmp_path_factory, customers) -> tuple[str, object]:
    frame, churn = customers
    model = catboost.CatBoostClassifier(iterations=30, verbose=0, random_seed=0,
                                        allow_writing_files=False,
                                        cat_features=["city", "plan"]).fit(frame, churn)
    path = str(tmp_path_factory.mktemp("catboost") / "churn")
    mlem.save(model, path, sample_data=frame)
    return path, model


def test_saved_in_cbm_with_categorical_columns(saved_catboost, customers):
    path, model = saved_catboost
    frame, _ = customers
    meta = mlem.load_meta(path)
    assert meta.model_type.type == "catboost"
    io = meta.model_type.io.model_dump()
    assert io == {"type": "catboost_cbm", "estimator": "CatBoostClassifier",
                  "cat_features": ["city", "plan"]}
    with open(path, "rb") as f:
        assert f.read(4) == b"CBM1"  # CatBoost's own format, not a pickle
    arg = meta.method("predict").args[0].type_
    assert dict(zip(arg.columns, arg.dtypes, strict=True))["city"] in ("str", "object")
    assert {"predict", "predict_proba"} <= set(meta.model_type.methods)
    assert "catboost" in [r.module for r in meta.python_requirements()]
    loaded = mlem.load(path)
    assert isinstance(loaded, catboost.CatBoostClassifier)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_array_equal(mlem.apply(path, frame, method="predict_proba"),
                                  model.predict_proba(frame))


def test_a_missing_category_is_a_schema_error(saved_catboost, customers):
    path, _ = saved_catboost
    frame, _ = customers
    bad = frame.head(3).copy()
    bad.loc[bad.index[1], "city"] = None
    with pytest.raises(SchemaError) as err:
        LoadedModel.load(path).call("predict", bad)
    assert err.value.field == "city"


def test_served_and_applied(saved_catboost, customers, start_server, tmp_path):
    from mlem_lib.client import HTTPClient

    path, model = saved_catboost
    frame, _ = customers
    server = start_server(path)
    client = HTTPClient(server.url)
    np.testing.assert_array_equal(client.predict(frame.head(20)), model.predict(frame.head(20)))
    bad = {"data": {"values": [{**frame.iloc[0].to_dict(), "city": None}]}}
    answer = httpx.post(f"{server.url}/predict", json=bad)
    assert answer.status_code == 400 and answer.json()["field"] == "city", answer.text
    frame.to_csv(tmp_path / "in.csv", index=False)
    mlem.apply(path, str(tmp_path / "in.csv"), output=str(tmp_path / "out.csv"))
    written = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_array_equal(written.iloc[:, 0].to_numpy(), model.predict(frame))


def test_onnx_export_without_categories(tmp_path, customers):
    frame, churn = customers
    numeric = frame[["age", "income"]]
    model = catboost.CatBoostClassifier(iterations=20, verbose=0,
                                        allow_writing_files=False).fit(numeric, churn)
    mlem.save(model, str(tmp_path / "num"), sample_data=numeric)
    result = mlem.build(str(tmp_path / "num"), "onnx", {"target": str(tmp_path / "out")})
    twin = LoadedModel.load(result.path)
    np.testing.assert_array_equal(twin.call("predict", numeric), model.predict(numeric))
    mlem.save(catboost.CatBoostClassifier(iterations=5, verbose=0, cat_features=["city"],
                                       allow_writing_files=False)
              .fit(frame[["city", "age"]], churn), str(tmp_path / "cat"),
              sample_data=frame[["city", "age"]])
    with pytest.raises(BuildError, match="categorical features"):
        mlem.build(str(tmp_path / "cat"), "onnx", {"target": str(tmp_path / "out2")})


@pytest.mark.docker
@pytest.mark.slow
def test_docker_image_serves_the_catboost_model(saved_catboost, customers, docker_client,
                                                docker_base_image, run_container):
    path, model = saved_catboost
    frame, _ = customers
    image = f"mlem-test-catboost:{uuid.uuid4().hex[:12]}"
    built = mlem.build(path, "docker", {"image": image, "base": docker_base_image})
    container = None
    try:
        container, url = run_container(image)
        answer = httpx.post(f"{url}/predict_proba",
                            json={"data": {"values": frame.head(5).to_dict("records")}},
                            timeout=60)
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json(), model.predict_proba(frame.head(5)),
                                   rtol=0, atol=1e-12)
    finally:
        if container is not None:
            container.remove(force=True)
        docker_client.images.remove(built.image_id, force=True)
