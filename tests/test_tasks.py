"""Tests of the Prefect tasks in tasks/, called through ``.fn`` with real parts:
real saves, a real git + DVC registry, real pip builds, real model servers."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests._fixtures.prefect import make_workspace, write_declaration
from tests.conftest import free_port

# --- retry policy ---------------------------------------------------------------------------

def test_only_transient_failures_are_retryable():
    from pydantic import BaseModel, ValidationError

    from mlem_lib.errors import (
        BuildError,
        CredentialsError,
        DeclarationError,
        DeploymentError,
        MetadataError,
        NetworkError,
        RegistryError,
        RolledBackError,
        SchemaError,
        ServerUnreachableError,
        SmokeTestError,
        TargetNotReadyError,
        TransientStorageError,
    )
    from mlem_lib.prefect.retry import is_transient

    class M(BaseModel):
        x: int

    with pytest.raises(ValidationError) as info:
        M(x="nope")  # type: ignore[arg-type]
    for exc in (SchemaError("bad"), MetadataError("bad"), RegistryError("bad"),
                CredentialsError("bad"), DeclarationError("field 'port'"), info.value,
                SmokeTestError("HTTP 500"), RolledBackError("x", restored_state=None),
                DeploymentError("the endpoint failed"), BuildError("pip install failed"),
                ValueError("model broke"), None):
        assert not is_transient(exc), exc
    for exc in (NetworkError("reset"), TransientStorageError("503 from S3"),
                ServerUnreachableError("not up yet"), TargetNotReadyError("update in progress"),
                ConnectionResetError("reset"), TimeoutError()):
        assert is_transient(exc), exc


def test_retry_condition_retries_transient_failures_only_in_a_real_run(prefect_harness):
    from prefect import flow, task

    from mlem_lib.errors import NetworkError, SchemaError
    from mlem_lib.prefect.retry import retry_if_transient

    attempts: list[str] = []

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_if_transient)
    def flaky(kind: str) -> None:
        attempts.append(kind)
        raise SchemaError("column 'x' is missing") if kind == "schema" else NetworkError("reset")

    @flow
    def run(kind: str) -> None:
        flaky(kind)

    with pytest.raises(SchemaError, match="column 'x'"):
        run("schema")
    with pytest.raises(NetworkError):
        run("network")
    assert attempts.count("schema") == 1
    assert attempts.count("network") == 3


def test_a_failed_smoke_test_inside_deploy_model_is_not_retried(prefect_harness, tmp_path,
                                                               broken_lr, deployments):
    """A broken model is rolled out once and reported, not rolled out and back three times."""
    from prefect import flow
    from prefect.client.orchestration import get_client

    from mlem_lib.errors import SmokeTestError
    from mlem_lib.prefect.tasks.deploy import deploy_model

    decl = write_declaration(str(tmp_path / "deploy"), "no-retry", free_port())
    deployments.append(decl)

    @flow
    def roll_out() -> tuple[Any, BaseException]:
        state = deploy_model.with_options(retry_delay_seconds=0)(decl, broken_lr,
                                                                 return_state=True)
        return state.state_details.task_run_id, state.result(raise_on_failure=False)

    task_run_id, error = roll_out()
    assert isinstance(error, SmokeTestError) and "HTTP 500" in str(error)
    with get_client(sync_client=True) as client:
        task_run = client.read_task_run(task_run_id)
    assert deploy_model.retries == 2  # retries are on, for transient failures
    assert task_run.run_count == 1


# --- credentials ----------------------------------------------------------------------------

def test_credentials_are_a_block_or_a_saved_blocks_name(prefect_harness):
    from prefect_aws import AwsCredentials
    from pydantic import SecretStr

    from mlem_lib.errors import CredentialsError
    from mlem_lib.prefect.blocks import HerokuCredentials, load_credentials

    HerokuCredentials(api_key=SecretStr("hrku-secret-1")).save("tasks-test", overwrite=True)
    AwsCredentials(aws_access_key_id="AKIDTASKS", aws_secret_access_key=SecretStr("x"),
                   region_name="eu-west-1").save("tasks-test", overwrite=True)

    heroku = load_credentials("heroku-credentials/tasks-test")
    assert isinstance(heroku, HerokuCredentials)
    assert heroku.api_key.get_secret_value() == "hrku-secret-1"
    assert "hrku-secret-1" not in repr(heroku)
    aws = load_credentials("aws-credentials/tasks-test")
    assert isinstance(aws, AwsCredentials) and aws.region_name == "eu-west-1"
    assert load_credentials(heroku) is heroku
    assert load_credentials(None) is None and load_credentials("") is None
    with pytest.raises(CredentialsError, match="<block-type-slug>/<block-name>"):
        load_credentials("tasks-test")
    with pytest.raises(CredentialsError, match="no such saved block"):
        load_credentials("heroku-credentials/nobody-saved-this")


@pytest.mark.docker
def test_deploy_model_carries_credentials_by_block_name(prefect_harness, heroku_decl,
                                                        saved_lr):
    """The Heroku API double accepts only its key: a rollout with the saved block's name
    succeeds, one without credentials is refused (and not retried)."""
    from pydantic import SecretStr

    from mlem_lib.errors import CredentialsError
    from mlem_lib.prefect.blocks import HerokuCredentials
    from mlem_lib.prefect.tasks.deploy import deploy_model, remove_deployment
    from tests._fixtures.deploy import HEROKU_TEST_KEY

    HerokuCredentials(api_key=SecretStr(HEROKU_TEST_KEY)).save("tasks-heroku", overwrite=True)
    decl = heroku_decl("tasks-credentials")
    with pytest.raises(CredentialsError):
        deploy_model.fn(decl, saved_lr)
    state = deploy_model.fn(decl, saved_lr, credentials="heroku-credentials/tasks-heroku")
    assert state.type == "heroku" and state.model_hash
    remove_deployment.fn(decl, credentials="heroku-credentials/tasks-heroku")


# --- models ---------------------------------------------------------------------------------

def test_save_model_writes_metadata_inferred_from_the_sample(tmp_path, iris, iris_lr):
    import mlem_lib.api as mlem
    from mlem_lib.prefect.tasks.models import save_model

    meta = save_model.fn(iris_lr, str(tmp_path / "lr"), iris[0], description="d",
                         labels=["a"])
    assert set(meta.model_type.methods) >= {"predict", "predict_proba"}
    assert mlem.load_meta(str(tmp_path / "lr")).model_hash == meta.model_hash
    assert meta.description == "d" and meta.labels == ["a"]


def test_save_model_refuses_data(tmp_path):
    from mlem_lib.errors import UnsupportedObjectError
    from mlem_lib.prefect.tasks.models import save_model

    with pytest.raises(UnsupportedObjectError, match="saved as data"):
        save_model.fn([1, 2, 3], str(tmp_path / "data"))


def test_infer_metadata_writes_nothing(tmp_path, iris, iris_rf):
    from mlem_lib.prefect.tasks.models import infer_metadata

    meta = infer_metadata.fn(iris_rf, iris[0])
    sig = meta.method("predict")
    assert [c for c in sig.args[0].type_.columns] == list(iris[0].columns)
    assert os.listdir(tmp_path) == []


# --- registry -------------------------------------------------------------------------------

def test_register_assign_and_find(tmp_path, iris, iris_lr):
    import mlem_lib.api as mlem
    from mlem_lib.prefect.tasks.registry import assign_stage, find_stage_version, register_version

    root = make_workspace(str(tmp_path / "ws"))
    mlem.save(iris_lr, os.path.join(root, "models", "lr"), sample_data=iris[0])
    registered = register_version.fn("models/lr", repo=root, version="v1.0.0")
    assert registered.tag == "lr@v1.0.0"
    assert find_stage_version.fn("lr", "prod", repo=root) is None
    assigned = assign_stage.fn("lr", "prod", version="v1.0.0", repo=root)
    assert assigned.stage == "prod"
    assert find_stage_version.fn("lr", "prod", repo=root) == "v1.0.0"
    # the binary went to the workspace's DVC remote
    remote = os.path.join(root, ".dvc-remote")
    assert any(files for _, _, files in os.walk(remote))


def test_assign_unknown_version_is_a_registry_error(iris_registry):
    from mlem_lib.errors import RegistryError
    from mlem_lib.prefect.tasks.registry import assign_stage

    with pytest.raises(RegistryError, match=r"v9\.9\.9"):
        assign_stage.fn("iris", "prod", version="v9.9.9", repo=iris_registry["repo"])


def test_workspace_setup_is_idempotent(tmp_path):
    import subprocess

    root = make_workspace(str(tmp_path / "ws"))
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                          text=True, check=True).stdout
    assert make_workspace(root) == root
    again = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                           text=True, check=True).stdout
    assert head == again
    status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                            text=True, check=True).stdout
    assert status == ""


# --- build ----------------------------------------------------------------------------------

def test_build_pip_package(tmp_path, saved_lr):
    from mlem_lib.prefect.tasks.build import build_pip_package

    package = build_pip_package.fn(saved_lr, target=str(tmp_path / "dist"), version="v1.2.3")
    assert package.version == "1.2.3"
    assert os.path.exists(package.wheel) and package.wheel.endswith(".whl")


def test_build_cache_key_follows_model_content(tmp_path, iris, iris_lr, iris_rf):
    import mlem_lib.api as mlem
    from mlem_lib.prefect.tasks.build import model_build_key

    path = str(tmp_path / "m")
    mlem.save(iris_lr, path, sample_data=iris[0])
    key_lr = model_build_key(None, {"model": path, "target": "a"})  # type: ignore[arg-type]
    assert key_lr == model_build_key(None, {"model": path, "target": "a"})  # type: ignore[arg-type]
    assert key_lr != model_build_key(None, {"model": path, "target": "b"})  # type: ignore[arg-type]
    mlem.save(iris_rf, path, sample_data=iris[0])
    assert key_lr != model_build_key(None, {"model": path, "target": "a"})  # type: ignore[arg-type]
    assert model_build_key(None, {"model": str(tmp_path / "none")}) is None  # type: ignore[arg-type]


@pytest.mark.docker
def test_build_and_push_docker_image(saved_lr, docker_base_image, docker_registry):
    registry, user, password = docker_registry
    from mlem_lib.prefect.tasks.build import build_docker_image, push_image

    built = build_docker_image.fn(saved_lr, image="mlem-tasks-test:lr", base=docker_base_image)
    assert built.image_id.startswith("sha256:")
    assert "mlem-tasks-test:lr" in built.tags
    from pydantic import SecretStr

    digest = push_image.fn("mlem-tasks-test:lr", registry, user, SecretStr(password))
    assert digest.startswith("sha256:")


# --- deploy ---------------------------------------------------------------------------------

def test_deploy_status_smoke_and_remove(tmp_path, iris, saved_lr, deployments):
    from mlem_lib.errors import SmokeTestError
    from mlem_lib.prefect.tasks.deploy import (
        deploy_model,
        deployment_status,
        remove_deployment,
        smoke_test,
    )

    decl = write_declaration(str(tmp_path / "deploy"), "tasks-test", free_port())
    deployments.append(decl)
    state = deploy_model.fn(decl, saved_lr)
    assert state.url and state.model_hash
    status = deployment_status.fn(decl)
    assert status.healthy and status.model_hash == state.model_hash
    answer = smoke_test.fn(state.url, iris[0].head(3))
    assert answer == [0, 0, 0]
    assert smoke_test.fn(state.url, None) is None
    with pytest.raises(SmokeTestError, match="HTTP 4"):
        smoke_test.fn(state.url, [{"not_a_column": 1.0}])
    with pytest.raises(SmokeTestError, match="no_such_method"):
        smoke_test.fn(state.url, iris[0].head(1), method="no_such_method")
    remove_deployment.fn(decl)
    assert not deployment_status.fn(decl).deployed
    with pytest.raises(SmokeTestError, match="did not answer 200"):
        smoke_test.fn(state.url, None, timeout=1)
    remove_deployment.fn(decl)  # removing twice is fine
