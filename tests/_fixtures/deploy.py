"""Fixtures for the deploy tests (loaded by conftest.py)."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture
def broken_lr(saved_lr: str, iris_lr: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model with ``saved_lr``'s schema whose ``predict`` raises (coefficients cut short).

    It loads fine, answers ``/health`` and fails the smoke request with a 500.
    """
    import mlem_lib.api as mlem

    bad = copy.deepcopy(iris_lr)
    bad.coef_ = bad.coef_[:, :2]
    path = str(tmp_path_factory.mktemp("broken") / "lr")
    mlem.save(bad, path)  # no sample data: save does not call predict
    good = yaml.safe_load(Path(saved_lr + ".mlem").read_text())
    new = yaml.safe_load(Path(path + ".mlem").read_text())
    good["artifacts"] = new["artifacts"]
    Path(path + ".mlem").write_text(yaml.safe_dump(good, sort_keys=False))
    return path


@pytest.fixture
def declare(tmp_path: Path) -> Callable[..., str]:
    """Write ``deployments/<name>.yaml`` under tmp_path; returns its path.

    Example: ``declare("staging", type="local", runtime="process", port=free_port())``
    """
    folder = tmp_path / "deployments"
    folder.mkdir(exist_ok=True)

    def write(name: str, **fields: Any) -> str:
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(fields, sort_keys=False))
        return str(path)

    return write


@pytest.fixture
def removed_after() -> Iterator[Callable[..., str]]:
    """Register declarations to tear down (``mlem_lib.deploy.remove``) after the test."""
    registered: list[tuple[str, dict[str, Any]]] = []

    def register(declaration: str, **options: Any) -> str:
        registered.append((declaration, options))
        return declaration

    yield register
    from mlem_lib.deploy import remove

    for declaration, options in reversed(registered):
        try:
            remove(declaration, progress=False, lock_timeout=30, **options)
        except Exception as exc:  # teardown must go on for the others
            print(f"teardown of {declaration} failed: {exc!r}", file=sys.stderr)


def kill_pid(pid: int) -> None:
    """Stop a process (group) we started, by PID, and reap it when it is our child."""
    from mlem_lib.deploy.local import stop_pid

    stop_pid(pid)


@pytest.fixture
def lock_holder() -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Start a separate Python process that holds a state file's lock until stopped."""
    procs: list[subprocess.Popen[str]] = []

    def start(state_path: str) -> subprocess.Popen[str]:
        code = ("import sys\nfrom mlem_lib.deploy.state import StateStore\n"
                f"with StateStore({state_path!r}).lock():\n"
                "    print('locked', flush=True)\n    sys.stdin.readline()\n")
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        kill_pid(proc.pid)


HEROKU_TEST_KEY = "mlem-test-pass"  # the double's API key = the local registry's password
OTHERS_APP = "someone-elses-app"  # an app name another Heroku account owns


@pytest.fixture
def heroku_double(docker_client: Any, docker_registry: tuple[str, str, str]) -> Iterator[Any]:
    """The Heroku Platform API double (tests/doubles/heroku_api.py) with Docker dynos.

    Its API key is the local registry's password, so ``docker login`` with the
    key works the way it does against registry.heroku.com. Another account owns
    :data:`OTHERS_APP`.
    """
    from tests.doubles.heroku_api import DockerDynos, HerokuDouble

    double = HerokuDouble(docker_registry[2], DockerDynos(docker_client, docker_registry),
                          others={OTHERS_APP})
    double.start()
    yield double
    double.stop()


@pytest.fixture
def heroku_api() -> Iterator[Any]:
    """The Heroku API double without Docker: dynos are local processes of the entrypoint
    for the model paths registered in ``heroku_api.runner.images`` (image id -> model)."""
    from tests.doubles.heroku_api import HerokuDouble, ProcessDynos

    double = HerokuDouble(HEROKU_TEST_KEY, ProcessDynos(), others={OTHERS_APP})
    double.start()
    yield double
    double.stop()


def _heroku_declaration(declare: Callable[..., str], double: Any, app: str,
                        registry: tuple[str, str, str] | None, base: str | None,
                        fields: dict[str, Any]) -> str:
    values: dict[str, Any] = {"type": "heroku", "app": app, "api_url": double.url,
                              "wait_timeout": 120, "poll_interval": 0.3}
    if registry is not None:
        values.update(registry=registry[0], registry_user=registry[1])
    if base is not None:
        values["base"] = base
    values.update(fields)
    return declare(app, **values)


@pytest.fixture
def heroku_decl(declare: Callable[..., str], heroku_double: Any,
                docker_registry: tuple[str, str, str],
                docker_base_image: str) -> Callable[..., str]:
    """``heroku_decl(app, **fields)``: a heroku declaration pointing at the Docker double."""
    def write(app: str, **fields: Any) -> str:
        return _heroku_declaration(declare, heroku_double, app, docker_registry,
                                   docker_base_image, fields)
    return write


@pytest.fixture
def heroku_api_decl(declare: Callable[..., str], heroku_api: Any) -> Callable[..., str]:
    """``heroku_api_decl(app, **fields)``: a heroku declaration for the double without Docker."""
    def write(app: str, **fields: Any) -> str:
        return _heroku_declaration(declare, heroku_api, app, None, None, fields)
    return write


AWS_TEST_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                 "region_name": "us-east-1"}


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto in server mode on 127.0.0.1 (S3, ECR, IAM, SageMaker control plane)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_session(moto_url: str) -> Any:
    """A boto3 Session with moto's test credentials (for the tests' own boto3 calls)."""
    import boto3

    return boto3.Session(**AWS_TEST_KEYS)


@pytest.fixture
def sagemaker_double(aws_session: Any, moto_url: str, docker_client: Any,
                     docker_registry: tuple[str, str, str]) -> Iterator[Any]:
    """The SageMaker double (tests/doubles/sagemaker.py) in front of moto, running the
    pushed images; its ECR token opens the local registry."""
    from tests.doubles.sagemaker import DockerInstances, SageMakerDouble

    double = SageMakerDouble(moto_url, aws_session,
                             DockerInstances(docker_client, docker_registry),
                             registry=docker_registry)
    double.start()
    yield double
    double.stop()


@pytest.fixture
def sagemaker_api(aws_session: Any, moto_url: str) -> Iterator[Any]:
    """The SageMaker double without Docker: instances are local processes of the image's
    entrypoint serving the model data from S3."""
    from tests.doubles.sagemaker import ProcessInstances, SageMakerDouble

    double = SageMakerDouble(moto_url, aws_session, ProcessInstances(), ping_timeout=300)
    double.start()
    yield double
    double.stop()


def _sagemaker_declaration(declare: Callable[..., str], aws_session: Any, moto_url: str,
                           double: Any, endpoint: str, extra: dict[str, Any],
                           fields: dict[str, Any]) -> str:
    iam = aws_session.client("iam", endpoint_url=moto_url)
    try:
        arn = iam.create_role(RoleName="mlem-sagemaker", AssumeRolePolicyDocument="{}")
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName="mlem-sagemaker")
    urls = {"s3": moto_url, "sagemaker": double.url, "sagemaker-runtime": double.url,
            "ecr": double.url}
    values: dict[str, Any] = {
        "type": "sagemaker", "endpoint_name": endpoint, "role_arn": arn["Role"]["Arn"],
        "bucket": "mlem-models", "ecr_repository": "mlem-sm", "endpoint_urls": urls,
        "wait_timeout": 120, "poll_interval": 0.2, **extra}
    values.update(fields)
    return declare(endpoint, **values)


@pytest.fixture
def sagemaker_decl(declare: Callable[..., str], aws_session: Any, moto_url: str,
                   sagemaker_double: Any, docker_registry: tuple[str, str, str],
                   docker_base_image: str) -> Callable[..., str]:
    """``sagemaker_decl(endpoint, **fields)``: a declaration wired to moto + the double.

    The image goes to the local registry standing in for ECR's; its credentials come
    from ECR's ``get_authorization_token`` (the double's token opens that registry).
    """
    def write(endpoint: str, **fields: Any) -> str:
        return _sagemaker_declaration(
            declare, aws_session, moto_url, sagemaker_double, endpoint,
            {"registry": docker_registry[0], "base": docker_base_image}, fields)
    return write


@pytest.fixture
def sagemaker_api_decl(declare: Callable[..., str], aws_session: Any, moto_url: str,
                       sagemaker_api: Any) -> Callable[..., str]:
    """``sagemaker_api_decl(endpoint, **fields)``: a declaration for the double without
    Docker (tests that never build an image)."""
    def write(endpoint: str, **fields: Any) -> str:
        return _sagemaker_declaration(declare, aws_session, moto_url, sagemaker_api,
                                      endpoint, {}, fields)
    return write


@pytest.fixture
def sagemaker_options(aws_session: Any) -> dict[str, Any]:
    """deploy()/status()/remove() keyword arguments for the SageMaker tests: the one
    ``credentials`` argument, with moto's test keys."""
    return {"credentials": dict(AWS_TEST_KEYS)}
