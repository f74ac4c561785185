"""Keras 3 models (issue 14), on the torch backend: ``.keras`` artifacts with the backend
recorded, served by a fresh process without ``KERAS_BACKEND``, save -> serve -> apply ->
a local deployment -> a Docker image (built and run, torch from the local wheelhouse).

TensorFlow and JAX are not installed here; torch is the tested backend (README, "Keras")."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import mlem_lib.api as mlem
from mlem_lib.errors import SchemaError
from mlem_lib.extras import available
from mlem_lib.runner import LoadedModel
from tests._fixtures.serve import wait_ready
from tests.conftest import REPO_ROOT, free_port, skip_or_fail

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras


@pytest.fixture(scope="module")
def keras():
    if not (available("keras") and available("torch")):
        skip_or_fail("keras and torch are not installed (bash scripts/bootstrap.sh)")
    import keras

    if keras.backend.backend() != "torch":
        pytest.fail(f"keras runs on {keras.backend.backend()}, these tests need torch",
                    pytrace=False)
    return keras


@pytest.fixture(scope="module")
def iris_net(keras, iris, tmp_path_factory):
    """A small classifier trained on iris as a DataFrame, saved: (path, model, X)."""
    X, y = iris
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X.to_numpy("float32"), y.to_numpy(), epochs=5, verbose=0)
    path = str(tmp_path_factory.mktemp("keras") / "net")
    mlem.save(model, path, sample_data=X)
    return path, model, X


def _expected(model, X):
    return model.predict(X.to_numpy("float32"), verbose=0)


def test_saved_in_keras_format_with_its_backend(iris_net):
    path, model, X = iris_net
    meta = mlem.load_meta(path)
    assert meta.model_type.type == "keras"
    assert meta.model_type.io.model_dump() == {"type": "keras_v3", "backend": "torch"}
    assert zipfile.is_zipfile(path) and "config.json" in zipfile.ZipFile(path).namelist()
    assert list(meta.model_type.methods) == ["predict"]
    assert meta.method("predict").args[0].type_.columns == list(X.columns)
    assert meta.method("predict").returns.describe() == "ndarray[float32, (n, 3)]"
    modules = [r.module for r in meta.python_requirements()]
    assert "keras" in modules and "torch" in modules
    loaded = mlem.load(path)
    np.testing.assert_allclose(loaded.predict(X.to_numpy("float32"), verbose=0),
                               _expected(model, X), rtol=0, atol=1e-6)
    np.testing.assert_allclose(mlem.apply(path, X), _expected(model, X), rtol=0, atol=1e-6)


def test_a_keras_file_is_saved_by_path(keras, iris_net, tmp_path):
    _, model, X = iris_net
    file = tmp_path / "model.keras"
    model.save(file)
    meta = mlem.save(str(file), str(tmp_path / "by_path"), sample_data=X)
    assert meta.model_type.type == "keras"
    np.testing.assert_allclose(mlem.apply(str(tmp_path / "by_path"), X), _expected(model, X),
                               rtol=0, atol=1e-6)


def test_a_row_of_the_wrong_width_is_a_schema_error(iris_net):
    path, _, X = iris_net
    with pytest.raises(SchemaError):
        LoadedModel.load(path).call("predict", X.iloc[:, :3])


def test_served_and_applied(iris_net, start_server, tmp_path):
    from mlem_lib.client import HTTPClient

    path, model, X = iris_net
    # a fresh process with no backend chosen (no KERAS_BACKEND, no ~/.keras/keras.json) loads
    # the model with the backend recorded at save time, without TensorFlow
    server = start_server(path, env={"KERAS_BACKEND": "", "HOME": str(tmp_path)}, wait=False)
    wait_ready(server.url, server.proc, server.log, timeout=240)  # torch's import is slow
    client = HTTPClient(server.url)
    np.testing.assert_allclose(client.predict(X.head(20)), _expected(model, X.head(20)),
                               rtol=0, atol=1e-6)
    one = httpx.post(f"{server.url}/predict",
                     json={"data": {"values": X.head(1).to_dict("records")}})
    assert one.status_code == 200, one.text
    np.testing.assert_allclose(one.json(), _expected(model, X.head(1)), rtol=0, atol=1e-6)
    bad = {"data": {"values": [{**X.iloc[0].to_dict(), "petal_width": "wide"}]}}
    answer = httpx.post(f"{server.url}/predict", json=bad)
    assert answer.status_code == 400 and answer.json()["field"] == "petal_width", answer.text
    X.to_csv(tmp_path / "in.csv", index=False)
    mlem.apply(path, str(tmp_path / "in.csv"), output=str(tmp_path / "out.csv"))
    written = pd.read_csv(tmp_path / "out.csv")
    assert written.shape == (len(X), 3)
    np.testing.assert_allclose(written.to_numpy(), _expected(model, X), rtol=0, atol=1e-5)


def test_a_model_of_several_inputs(keras, tmp_path):
    a, b = keras.Input((2,), name="a"), keras.Input((3,), name="b")
    out = keras.layers.Dense(1, name="out")(keras.layers.Concatenate()([a, b]))
    model = keras.Model({"a": a, "b": b}, out)
    sample = {"a": np.ones((4, 2), "float32"), "b": np.zeros((4, 3), "float32")}
    mlem.save(model, str(tmp_path / "two"), sample_data=sample)
    loaded = LoadedModel.load(str(tmp_path / "two"))
    np.testing.assert_allclose(loaded.call("predict", sample),
                               model.predict(sample, verbose=0), rtol=0, atol=1e-6)


def test_a_backend_that_is_not_installed_is_one_clear_line(iris_net, tmp_path):
    path, _, X = iris_net
    X.head(3).to_csv(tmp_path / "in.csv", index=False)
    env = {**os.environ, "KERAS_BACKEND": "jax"}  # jax is not installed here
    done = subprocess.run([sys.executable, "-m", "mlem_lib.cli", "apply", path,
                           str(tmp_path / "in.csv")], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "Keras models with the jax backend need 'jax', which is not installed" in last, \
        done.stderr
    assert "Traceback" not in done.stderr


def test_image_context_installs_keras_and_its_backend(iris_net, tmp_path):
    from mlem_lib.build.dockerfile import build_docker_dir

    path, _, _ = iris_net
    ctx = build_docker_dir(path, str(tmp_path / "ctx"))
    reqs = (tmp_path / "ctx" / "requirements.txt").read_text()
    import keras
    import torch

    assert f"keras=={keras.__version__}" in reqs.splitlines()
    assert "torch" in reqs and torch.__version__.split("+")[0] in reqs, reqs
    assert "tensorflow" not in reqs
    assert "KERAS_BACKEND" not in Path(ctx.dockerfile).read_text()


@pytest.mark.slow
def test_local_deployment_answers_the_schema_smoke_request(iris_net, declare, removed_after):
    from mlem_lib.deploy import deploy
    from mlem_lib.deploy.smoke import SmokeRequest

    path, model, X = iris_net
    smoke = SmokeRequest.for_model(mlem.load_meta(path))
    assert smoke.body["data"]["values"] == X.head(1).to_dict("records")  # the sample's row
    decl = removed_after(declare("keras", type="local", runtime="process", port=free_port()))
    state = deploy(decl, path, progress=False)  # waits for /health, then sends the smoke
    answer = httpx.post(f"{state.url}/{smoke.method}", json=smoke.body, timeout=60)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json(), _expected(model, X.head(1)), rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.docker
def test_docker_image_serves_the_keras_model(iris_net, docker_client, dl_image,
                                             run_container):
    from mlem_lib.client import HTTPClient
    from mlem_lib.deploy.smoke import check_http

    path, model, X = iris_net
    built = dl_image(path, "keras")
    env = docker_client.images.get(built.image_id).attrs["Config"]["Env"]
    assert not any(e.startswith("KERAS_BACKEND=") for e in env)  # the .mlem file says torch
    _, url = run_container(built.tags[0])
    expected = mlem.apply(path, X.head(20))  # in process
    np.testing.assert_allclose(expected, _expected(model, X.head(20)), rtol=0, atol=1e-6)
    with HTTPClient(url) as client:
        np.testing.assert_allclose(client.predict(X.head(20)), expected, rtol=0, atol=1e-6)
    one = httpx.post(f"{url}/predict", json={"data": {"values": X.head(1).to_dict("records")}},
                     timeout=60)
    assert one.status_code == 200, one.text
    np.testing.assert_allclose(one.json(), expected[:1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(check_http(url, mlem.load_meta(path)), expected[:1], rtol=0,
                               atol=1e-6)
    bad = {"data": {"values": [{**X.iloc[0].to_dict(), "petal_width": "wide"}]}}
    answer = httpx.post(f"{url}/predict", json=bad, timeout=60)
    assert answer.status_code == 400 and answer.json()["field"] == "petal_width", answer.text


def test_mlem_import_reads_a_keras_file(keras, iris_net, tmp_path, monkeypatch):
    from mlem_lib.cli import main

    _, model, X = iris_net
    model.save(tmp_path / "model.keras")
    X.head(10).to_csv(tmp_path / "sample.csv", index=False)
    monkeypatch.chdir(tmp_path)
    assert main(["import", "model.keras", "imported/net", "--sample", "sample.csv"]) == 0
    assert mlem.load_meta("imported/net").model_type.type == "keras"
    np.testing.assert_allclose(mlem.apply("imported/net", X), _expected(model, X),
                               rtol=0, atol=1e-6)
