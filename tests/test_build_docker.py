"""``build(model, "docker-dir" | "docker")``: the generated context, and real images.

The image tests need ``eval "$(scripts/docker-env.sh all)"`` (engine, base image,
registry); they skip without it, or fail where ``CI=true``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

import mlem_lib
import mlem_lib.api as mlem
from mlem_lib.build.dockerfile import (
    LABEL_LIB_VERSION,
    LABEL_MODEL_HASH,
    LABEL_MODEL_VERSION,
    build_docker_dir,
)
from mlem_lib.errors import BuildError, CredentialsError, DockerUnavailableError
from tests._fixtures.build import TEST_IMAGE_REPO
from tests.helpers.formats import check_every_format


def _instructions(dockerfile: str) -> list[str]:
    """Dockerfile instructions with continuation lines joined."""
    text = re.sub(r"\\\n", " ", Path(dockerfile).read_text())
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _index(lines: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


# --------------------------------------------------------------- the context --

def test_context_layout_and_layer_order(saved_rf, tmp_path):
    ctx = build_docker_dir(saved_rf, str(tmp_path / "ctx"), model_version="v1.0.0")
    root = Path(ctx.path)
    assert sorted(p.name for p in (root / "model").iterdir()) == ["model.mlem", "rf"]
    assert (root / ".dockerignore").read_text().strip()
    [wheel] = (root / "wheels").iterdir()
    assert wheel.name.startswith("mlem_lib-")
    reqs = (root / "requirements.txt").read_text().splitlines()
    assert any(r.startswith("scikit-learn==") for r in reqs)
    assert "fastapi" in " ".join(reqs)
    assert not any(r.startswith(("prefect", "dvc", "boto3", "docker")) for r in reqs)
    # one line per distribution: the model's exact pin wins over mlem_lib's range
    assert len([r for r in reqs if r.startswith("numpy")]) == 1
    assert next(r for r in reqs if r.startswith("numpy")).startswith("numpy==")

    lines = _instructions(ctx.dockerfile)
    assert lines[0] == "FROM python:3.11-slim"
    venv = _index(lines, "RUN set -eux")
    assert "python3 -m venv /opt/venv" in lines[venv]
    pip_install = _index(lines, "RUN pip install --no-cache-dir -r")
    model_copy = _index(lines, "COPY model/ /app/model/")
    user = _index(lines, "USER 10001")
    assert venv < pip_install < user < model_copy
    # only the model copy and its labels follow the model files
    assert [line.split()[0] for line in lines[model_copy:]] == ["COPY", "LABEL"]
    assert 'ENTRYPOINT ["python", "-m", "mlem_lib.serve.container"]' in lines
    assert 'CMD ["serve"]' in lines
    assert ctx.labels[LABEL_MODEL_VERSION] == "v1.0.0"
    assert ctx.labels[LABEL_MODEL_HASH] == mlem.load_meta(saved_rf).model_hash
    assert f'{LABEL_MODEL_HASH}="{ctx.labels[LABEL_MODEL_HASH]}"' in lines[-1]


def test_options_base_python_apt_pip(saved_rf, tmp_path):
    ctx = build_docker_dir(saved_rf, str(tmp_path / "a"), python_version="3.12",
                           apt=["curl", "curl", "git"], pip=["six==1.16.0"])
    assert ctx.base == "python:3.12-slim"
    assert ctx.apt == ["curl", "git"]
    assert "six==1.16.0" in Path(ctx.path, "requirements.txt").read_text().splitlines()
    assert "pkgs='curl git'" in Path(ctx.dockerfile).read_text()
    ctx = build_docker_dir(saved_rf, str(tmp_path / "b"), base="debian:bookworm-slim")
    assert _instructions(ctx.dockerfile)[0] == "FROM debian:bookworm-slim"


def test_xgboost_model_gets_libgomp(iris, tmp_path):
    import xgboost
    X, y = iris
    model = xgboost.XGBClassifier(n_estimators=2, max_depth=2).fit(X, y)
    mlem.save(model, str(tmp_path / "xgb"), sample_data=X)
    ctx = build_docker_dir(str(tmp_path / "xgb"), str(tmp_path / "ctx"))
    assert "libgomp1" in ctx.apt
    assert "libgomp1" in Path(ctx.dockerfile).read_text()


@pytest.mark.parametrize(("option", "value"), [
    ("base", "bad image name!"), ("python_version", "three"), ("python_version", "3.9"),
    ("apt", ["curl; rm -rf /"]),
    ("pip", ["six\nRUN evil"]),
])
def test_bad_options_name_the_field(saved_rf, tmp_path, option, value):
    with pytest.raises(BuildError, match=option):
        build_docker_dir(saved_rf, str(tmp_path / "ctx"), **{option: value})
    assert not (tmp_path / "ctx").exists()


def test_rerun_replaces_the_context(saved_rf, saved_lr, tmp_path):
    target = tmp_path / "ctx"
    build_docker_dir(saved_rf, str(target))
    (target / "stale.txt").write_text("left from before")
    build_docker_dir(saved_lr, str(target))
    assert not (target / "stale.txt").exists()
    assert sorted(p.name for p in (target / "model").iterdir()) == ["lr", "model.mlem"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx"]


def test_local_code_goes_into_the_context(iris, tmp_path, monkeypatch):
    X, _ = iris
    src = tmp_path / "src"
    src.mkdir()
    (src / "mlem_docker_test_helpers.py").write_text(
        "def width(df):\n    return df['petal_width'].tolist()\n")
    monkeypatch.syspath_prepend(str(src))
    try:
        helpers = __import__("mlem_docker_test_helpers")
        mlem.save(helpers.width, str(tmp_path / "width"), sample_data=X)
    finally:
        sys.modules.pop("mlem_docker_test_helpers", None)
    ctx = build_docker_dir(str(tmp_path / "width"), str(tmp_path / "ctx"), strip_tests=False)
    assert (Path(ctx.path) / "code" / "mlem_docker_test_helpers.py").read_text().startswith(
        "def width")
    lines = _instructions(ctx.dockerfile)
    assert "COPY code/ /app/code/" in lines
    assert "ENV PYTHONPATH=/app/code" in lines
    assert _index(lines, "COPY code/") < _index(lines, "COPY model/")
    assert "find /opt/venv" not in Path(ctx.dockerfile).read_text()


def test_dispatch_errors(saved_rf):
    with pytest.raises(BuildError,
                       match=r"build kind 'wheel' \(known: docker, docker-dir, onnx, pip"):
        mlem.build(saved_rf, "wheel")
    with pytest.raises(BuildError, match="option 'package_name': Extra inputs"):
        mlem.build(saved_rf, "docker-dir", {"package_name": "x"})
    with pytest.raises(BuildError, match="option 'strip_tests': Input should be a valid bool"):
        mlem.build(saved_rf, "docker-dir", {"strip_tests": "sometimes"})


def test_cli_docker_dir(saved_rf, tmp_path, capsys):
    from mlem_lib.cli import main

    code = main(["build", saved_rf, "docker-dir", "--target", str(tmp_path / "ctx"),
                 "--apt", "curl,git", "--pip", "six==1.16.0"])
    assert code == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    text = (tmp_path / "ctx" / "Dockerfile").read_text()
    assert "pkgs='curl git'" in text
    assert main(["build", saved_rf, "docker-dir", "--push", "127.0.0.1:1"]) == 1
    assert "--push cannot be used" in capsys.readouterr().err


def test_missing_engine_is_one_clear_error(saved_rf, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(DockerUnavailableError, match="no Docker engine answers at unix://"):
        mlem.build(saved_rf, "docker", {"image": "x:1"})
    from mlem_lib.cli import main

    assert main(["build", saved_rf, "docker", "--image", "x:1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no Docker engine answers")
    assert "Traceback" not in err


# ---------------------------------------------------------- real images ------

@pytest.mark.docker
def test_image_serves_predict_ping_invocations(iris_image, run_container, iris, iris_rf,
                                               saved_rf, docker_client):
    X, _ = iris
    image = docker_client.images.get(iris_image.image_id)
    config = image.attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["python", "-m", "mlem_lib.serve.container"]
    assert config["Labels"][LABEL_MODEL_HASH] == mlem.load_meta(saved_rf).model_hash
    assert config["Labels"][LABEL_MODEL_VERSION] == "v-session"
    assert config["Labels"][LABEL_LIB_VERSION] == mlem_lib.__version__

    container, url = run_container(iris_image.image_id)
    rows = X.head(7).to_dict(orient="records")
    expected = iris_rf.predict(X.head(7)).tolist()
    assert httpx.get(f"{url}/ping", trust_env=False).status_code == 200
    resp = httpx.post(f"{url}/predict", json={"data": {"values": rows}}, trust_env=False,
                      timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json() == expected
    csv = X.head(7).to_csv(index=False)
    resp = httpx.post(f"{url}/invocations", content=csv, trust_env=False, timeout=30,
                      headers={"Content-Type": "text/csv", "Accept": "application/json"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == expected
    # every format the image advertises, HTTPClient's Parquet path included (issue 13)
    check_every_format(url, X, iris_rf)
    uid = container.exec_run(["id", "-u"]).output.decode().strip()
    assert uid == "10001"


@pytest.mark.docker
def test_image_needs_no_network_at_run_time(iris_image, docker_client, iris, iris_rf):
    X, _ = iris
    code = ("import json, os; import pandas as pd; from mlem_lib.runner import LoadedModel; "
            "m = LoadedModel.load(os.environ['MLEM_MODEL']); "
            f"X = pd.DataFrame({X.head(4).to_dict(orient='list')!r}); "
            "print(json.dumps(m.call('predict', X).tolist()))")
    out = docker_client.containers.run(iris_image.image_id, entrypoint=["python", "-c", code],
                                       network_mode="none", remove=True, stderr=True)
    assert out.decode().strip().splitlines()[-1] == str(iris_rf.predict(X.head(4)).tolist())


@pytest.mark.docker
def test_sagemaker_style_start(iris_image, run_container, iris):
    """``docker run IMAGE serve`` with SAGEMAKER_BIND_TO_PORT, as SageMaker starts it."""
    X, _ = iris
    _, url = run_container(iris_image.image_id, command=["serve"],
                           port_env="SAGEMAKER_BIND_TO_PORT", env={"PORT": "1"})
    resp = httpx.post(f"{url}/invocations", content=X.head(2).to_csv(index=False),
                      headers={"Content-Type": "text/csv"}, trust_env=False, timeout=30)
    assert resp.status_code == 200, resp.text


@pytest.mark.docker
def test_sagemaker_start_without_port_variable_listens_on_8080(iris_image, docker_client):
    """Single-container endpoints get no ``SAGEMAKER_BIND_TO_PORT`` (nor ``PORT``): the
    server must listen on 8080. The container has a network of its own, so 8080 inside
    it collides with nothing on this machine."""
    import time

    from tests.doubles.isolated import ContainerUnreachable, IsolatedContainer

    box = IsolatedContainer.run(docker_client, iris_image.image_id, port=8080,
                                command=["serve"], labels={"mlem.test": "port-fallback"})
    try:
        deadline = time.monotonic() + 120
        answer = None
        while answer is None and box.running() and time.monotonic() < deadline:
            try:
                answer = box.request("GET", "/ping", timeout=5)
            except ContainerUnreachable:
                time.sleep(0.3)
        assert answer is not None and answer.status_code == 200, \
            f"nothing answered on 8080 inside the container:\n{box.logs()}"
    finally:
        box.remove()


@pytest.mark.docker
def test_new_model_version_rebuilds_only_model_layers(iris_image, docker_client,
                                                      docker_base_image, iris, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris
    other = RandomForestClassifier(n_estimators=5, random_state=7).fit(X, y)
    mlem.save(other, str(tmp_path / "rf"), sample_data=X)
    logs: list[str] = []
    new = mlem.build(str(tmp_path / "rf"), "docker", {
        "image": f"{TEST_IMAGE_REPO}:changed", "base": docker_base_image,
        "model_version": "v-session"}, progress=logs.append)
    assert new.image_id != iris_image.image_id
    assert any("Using cache" in line for line in logs)

    def history(image_id: str) -> list[dict]:
        return list(reversed(docker_client.images.get(image_id).history()))

    old_h, new_h = history(iris_image.image_id), history(new.image_id)
    assert len(old_h) == len(new_h)
    requirements_step = next(i for i, h in enumerate(new_h)
                             if "pip install --no-cache-dir -r" in h["CreatedBy"])
    model_step = next(i for i, h in enumerate(new_h)
                      if "COPY" in h["CreatedBy"] and " in /app/model/" in h["CreatedBy"])
    # the system packages, venv and requirements layers are reused as they are; the
    # mlem_lib wheel steps in between are reused too unless mlem_lib's source changed
    for old, fresh in zip(old_h[:requirements_step + 1], new_h[:requirements_step + 1],
                          strict=True):
        assert old["Id"] == fresh["Id"], f"{fresh['CreatedBy']} was rebuilt"
    assert model_step == len(new_h) - 2  # only the labels follow the model
    assert old_h[model_step]["Id"] != new_h[model_step]["Id"]
    # filesystem layers: [..., requirements, wheel copy, wheel install, workdir, model]
    old_layers = docker_client.images.get(iris_image.image_id).attrs["RootFS"]["Layers"]
    new_layers = docker_client.images.get(new.image_id).attrs["RootFS"]["Layers"]
    assert len(old_layers) == len(new_layers)
    assert old_layers[:-4] == new_layers[:-4]
    assert old_layers[-1] != new_layers[-1]
    labels = docker_client.images.get(new.image_id).attrs["Config"]["Labels"]
    assert labels[LABEL_MODEL_HASH] == mlem.load_meta(str(tmp_path / "rf")).model_hash
    docker_client.images.remove(new.image_id, force=True)


@pytest.mark.docker
def test_push_with_credentials(iris_image, docker_registry, docker_client):
    from mlem_lib.build.docker import push_image

    address, user, password = docker_registry
    digest = push_image(iris_image.tags[0], address, user, password)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    repo, tag = iris_image.tags[0].split(":")
    resp = httpx.get(f"http://{address}/v2/{repo}/manifests/{tag}", auth=(user, password),
                     trust_env=False, headers={
                         "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert resp.status_code == 200
    assert resp.headers["Docker-Content-Digest"] == digest
    # the registry's config digest is the local image id (what Heroku's release takes)
    assert resp.json()["config"]["digest"] == iris_image.image_id

    with pytest.raises(CredentialsError, match="refused"):
        push_image(iris_image.tags[0], address, user, "wrong-password")
    docker_client.images.remove(f"{address}/{iris_image.tags[0]}")


@pytest.mark.docker
def test_build_and_push_in_one_call_via_env_credentials(saved_rf, docker_registry,
                                                        docker_base_image, monkeypatch,
                                                        iris_image, docker_client):
    address, user, password = docker_registry
    monkeypatch.setenv("MLEM_REGISTRY_USERNAME", user)
    monkeypatch.setenv("MLEM_REGISTRY_PASSWORD", password)
    img = mlem.build(saved_rf, "docker", {
        "image": f"{TEST_IMAGE_REPO}:session", "base": docker_base_image,
        "model_version": "v-session", "push": address})
    assert img.labels[LABEL_MODEL_HASH] == iris_image.labels[LABEL_MODEL_HASH]
    resp = httpx.get(f"http://{address}/v2/{TEST_IMAGE_REPO}/manifests/{img.digest}",
                     auth=(user, password), trust_env=False, headers={
                         "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert resp.status_code == 200
    assert resp.json()["config"]["digest"] == img.image_id
    assert img.repo_digest == f"{address}/{TEST_IMAGE_REPO}@{img.digest}"
    assert f"{address}/{TEST_IMAGE_REPO}:session" in img.tags
    docker_client.images.remove(f"{address}/{TEST_IMAGE_REPO}:session")


@pytest.mark.docker
def test_cli_builds_an_image(saved_rf, iris_image, docker_client, docker_base_image, capsys):
    from mlem_lib.cli import main

    code = main(["build", saved_rf, "docker", "--image", f"{TEST_IMAGE_REPO}:cli",
                 "--base", docker_base_image, "--model-version", "v-session"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Step 1/" in captured.err  # build progress is streamed
    assert f"built {TEST_IMAGE_REPO}:cli" in captured.out
    image = docker_client.images.get(f"{TEST_IMAGE_REPO}:cli")
    assert image.labels[LABEL_MODEL_HASH] == iris_image.labels[LABEL_MODEL_HASH]
    docker_client.images.remove(f"{TEST_IMAGE_REPO}:cli")


@pytest.mark.docker
def test_failed_build_step_is_a_build_error(saved_rf, docker_client, docker_base_image):
    with pytest.raises(BuildError, match=r"docker build of mlem-test-broken:1 failed.*"
                       r"No matching distribution found for mlem-no-such-package-xyz"):
        mlem.build(saved_rf, "docker", {"image": "mlem-test-broken:1", "base": docker_base_image,
                                        "pip": ["mlem-no-such-package-xyz==0.0.1"]})


def test_image_name_is_checked(saved_rf):
    with pytest.raises(BuildError, match="image 'Bad Name'"):
        mlem.build(saved_rf, "docker", {"image": "Bad Name"})

