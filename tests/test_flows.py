"""Flow tests on Prefect's embedded server (``prefect_harness``), with real parts:
a git + DVC registry, pip builds and model servers on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from tests._fixtures.prefect import make_workspace, write_declaration
from tests.conftest import free_port

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _tags(repo: str) -> list[str]:
    out = subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True, check=True)
    return sorted(out.stdout.split())


def _artifact(key: str) -> str:
    from prefect.artifacts import Artifact

    found = Artifact.get(key)
    assert found is not None, f"no artifact {key}"
    return str(found.data)


def test_register_model_publishes_a_card_and_is_idempotent(tmp_path, iris, iris_lr):
    from mlem_lib.prefect.flows.params import RegisterOptions
    from mlem_lib.prefect.flows.register_model import register_model

    root = make_workspace(str(tmp_path / "ws"))
    options = RegisterOptions(name="lr", repo=root, stage="staging", description="iris LR")
    first = register_model(iris_lr, options, sample_data=iris[0], metrics={"accuracy": 0.97})
    assert first.tag == "lr@v0.0.1"
    assert _tags(root) == ["lr#staging#1", "lr@v0.0.1"]
    card = _artifact("lr-model-card")
    for expected in ("lr@v0.0.1", "| accuracy | 0.97 |", "`predict_proba`", "sepal_length",
                     "scikit-learn", "iris LR"):
        assert expected in card, expected
    assert "0.97" in _artifact("lr-versions")

    again = register_model(iris_lr, options, sample_data=iris[0], metrics={"accuracy": 0.97})
    assert (again.version, again.commit) == (first.version, first.commit)
    assert again.path == first.path == "models/lr"  # also when the version is reused
    assert _tags(root) == ["lr#staging#1", "lr@v0.0.1"]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                            text=True, check=True).stdout
    assert status == ""


def test_register_saved_model(tmp_path, iris, iris_rf):
    import mlem_lib.api as mlem
    from mlem_lib.prefect.flows.params import RegisterSavedRequest
    from mlem_lib.prefect.flows.register_model import register_saved_model

    root = make_workspace(str(tmp_path / "ws"))
    mlem.save(iris_rf, os.path.join(root, "models", "forest"), sample_data=iris[0])
    os.makedirs(os.path.join(root, "plots"))
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16  # the card embeds bytes, it does not decode
    with open(os.path.join(root, "plots", "roc.png"), "wb") as f:
        f.write(png)
    registered = register_saved_model(RegisterSavedRequest(
        model_path="models/forest", repo=root, version="v2.0.0", metrics={"f1": 0.5},
        plots="plots"))
    assert registered.tag == "forest@v2.0.0"
    card = _artifact("forest-model-card")
    assert "| f1 | 0.5 |" in card
    import base64

    assert f"![roc.png](data:image/png;base64,{base64.b64encode(png).decode()})" in card
    # the metrics and plots are committed with the version
    records = mlem.version_records("forest@v2.0.0", repo=root)
    assert records.metrics == {"f1": 0.5}
    assert records.plots == ["models/forest.plots/roc.png"]


def test_package_model_pins_the_stage_and_reuses_cached_builds(tmp_path, iris_registry):
    import mlem_lib.api as mlem
    from mlem_lib.prefect.flows.package_model import package_model
    from mlem_lib.prefect.flows.params import PackageRequest

    repo = iris_registry["repo"]
    mlem.assign("iris", "pkg", version=iris_registry["v1"], repo=repo)
    request = PackageRequest(model="iris#pkg", repo=repo, target=str(tmp_path / "dist"))
    result = package_model(request)
    assert result.model == f"iris@{iris_registry['v1']}"
    wheel = result.pip.wheel
    assert os.path.exists(wheel) and "0.0.1" in os.path.basename(wheel)
    built_at = os.stat(wheel).st_mtime_ns

    again = package_model(request)
    assert again.pip.wheel == wheel
    assert os.stat(wheel).st_mtime_ns == built_at  # cache hit: nothing was rebuilt

    os.remove(wheel)
    rebuilt = package_model(request)
    assert os.path.exists(rebuilt.pip.wheel)


def test_package_model_with_an_empty_stage_fails_clearly(iris_registry):
    from mlem_lib.errors import VersionNotFoundError
    from mlem_lib.prefect.flows.package_model import package_model
    from mlem_lib.prefect.flows.params import PackageRequest

    with pytest.raises(VersionNotFoundError, match="stage 'nobody'"):
        package_model(PackageRequest(model="iris#nobody", repo=iris_registry["repo"]))


def test_flow_parameters_are_validated():
    from prefect.exceptions import ParameterTypeError

    from mlem_lib.prefect.flows.rollout_model import rollout_model

    with pytest.raises(ParameterTypeError, match="smoke_timeout"):
        rollout_model({"model": "iris@v0.0.1", "smoke_timeout": -1})  # type: ignore[arg-type]


def test_rollout_of_a_path_cannot_promote(tmp_path, saved_lr):
    from mlem_lib.errors import RegistryError
    from mlem_lib.prefect.flows.params import RolloutRequest
    from mlem_lib.prefect.flows.rollout_model import rollout_model

    with pytest.raises(RegistryError, match="field 'stage'"):
        rollout_model(RolloutRequest(model=saved_lr, declaration=str(tmp_path / "d.yaml"),
                                     stage="prod"))


def test_rollout_rollback_and_scheduled_redeploy(tmp_path, iris, iris_registry, deployments):
    import mlem_lib.api as mlem
    from mlem_lib.errors import SmokeTestError
    from mlem_lib.prefect.flows.params import RedeployRequest, RolloutRequest
    from mlem_lib.prefect.flows.redeploy_stage import redeploy_stage
    from mlem_lib.prefect.flows.rollout_model import rollout_model

    repo, v1, v2 = iris_registry["repo"], iris_registry["v1"], iris_registry["v2"]
    decl = write_declaration(str(tmp_path / "deploy"), "flows-test", free_port())
    deployments.append(decl)
    rows = iris[0].head(2).to_dict("records")

    # a first rollout that fails its smoke test leaves nothing behind
    with pytest.raises(SmokeTestError, match="removed the deployment"):
        rollout_model(RolloutRequest(model=f"iris@{v1}", repo=repo, declaration=decl,
                                     sample=[{"bogus": 1.0}], stage="live"))
    assert not mlem.status(decl).deployed
    assert mlem.find_stage_version("iris", "live", repo=repo) is None

    # a good rollout answers and promotes the version
    first = rollout_model(RolloutRequest(model=f"iris@{v1}", repo=repo, declaration=decl,
                                         sample=rows, stage="live"))
    assert first.answer == [0, 0]
    assert mlem.find_stage_version("iris", "live", repo=repo) == v1
    answer = httpx.post(f"{first.url}/predict", json={"data": rows}, timeout=30)
    assert answer.status_code == 200
    assert f"iris@{v1}" in _artifact("flows-test-deployment")

    # a version that fails the smoke test is rolled back and not promoted
    with pytest.raises(SmokeTestError, match="rolled back to model"):
        rollout_model(RolloutRequest(model=f"iris@{v2}", repo=repo, declaration=decl,
                                     sample=[{"bogus": 1.0}], stage="live"))
    assert mlem.status(decl).model_hash == iris_registry["hash1"]
    assert mlem.status(decl).healthy
    assert mlem.find_stage_version("iris", "live", repo=repo) == v1

    # the scheduled redeploy does nothing while the stage is unchanged...
    request = RedeployRequest(name="iris", stage="live", repo=repo, declaration=decl,
                              sample=rows)
    assert redeploy_stage(request).action == "unchanged"
    # ...rolls out the new version once the stage moves...
    mlem.assign("iris", "live", version=v2, repo=repo)
    moved = redeploy_stage(request)
    assert moved.action == "rolled-out" and moved.version == v2
    assert mlem.status(decl).model_hash == iris_registry["hash2"]
    # ...and nothing again afterwards
    assert redeploy_stage(request).action == "unchanged"
    # an empty stage is reported, not deployed
    assert redeploy_stage(request.model_copy(update={"stage": "empty"})).action == "empty-stage"


def test_train_iris_demo_runs_and_reruns(tmp_path, deployments):
    from flows.train_iris import TrainIrisOptions, train_iris

    workspace = str(tmp_path / "demo-workspace")
    deployments.append(os.path.join(workspace, ".deploy", "iris-local.yaml"))
    options = TrainIrisOptions(workspace=workspace, port=free_port(), runtime="process",
                               package="pip", n_estimators=10)
    result = train_iris(options)
    assert result.tag == "iris@v0.0.1" and result.accuracy > 0.8
    assert len(result.predictions) == 5
    assert httpx.get(f"{result.url}/health", timeout=10).status_code == 200
    wheel = "mlem_model_iris-0.0.1-py3-none-any.whl"  # the default name of a pip package
    assert os.path.exists(os.path.join(workspace, "build", wheel))

    again = train_iris(options)
    assert again.tag == result.tag and again.url == result.url
    assert _tags(workspace) == ["iris#prod#1", "iris@v0.0.1"]
