"""Shared fixtures. Area-specific fixtures live in tests/_fixtures/<area>.py."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

# DVC installs its log handlers on the sys.stderr of the moment it is first imported. If
# that happens inside a test using capsys, later DVC logging writes to a closed stream, so
# import it once here, while sys.stderr is the session's.
import dvc.logger  # noqa: F401  isort: skip

pytest_plugins = [
    "tests._fixtures.serve",
    "tests._fixtures.apply",
    "tests._fixtures.build",
    "tests._fixtures.deploy",
    "tests._fixtures.cloud",
    "tests._fixtures.registry",
    "tests._fixtures.prefect",
    "tests._fixtures.fidelity",
    "tests._fixtures.migration",
    "tests._fixtures.deeplearning",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
# builds do not ask PyPI whether a package name is taken (tests that check it set their own
# loopback index and turn it back on)
os.environ.setdefault("MLEM_BUILD_CHECK_INDEX", "0")


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing, or fail it where ``CI`` is set (``1``/``true``/
    ``yes``, as CI systems set it): CI has them all."""
    if IN_CI:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def uv_command() -> list[str]:
    """uv as scripts/bootstrap.sh finds it: on PATH, else the system Python's module (the
    bootstrap installs it there), else this interpreter's; fails under CI when missing."""
    import shutil
    import subprocess
    import sys

    found = shutil.which("uv")
    if found:
        return [found]
    for python in (shutil.which("python3.11"), shutil.which("python3"), sys.executable):
        if python and subprocess.run([python, "-m", "uv", "--version"], capture_output=True,
                                     check=False).returncode == 0:
            return [python, "-m", "uv"]
    skip_or_fail("uv is not installed (scripts/bootstrap.sh installs it)")
    raise AssertionError("unreachable")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def iris():
    """The iris data set as (X DataFrame with simple column names, y Series)."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return X, y


@pytest.fixture(scope="session")
def iris_lr(iris):
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


@pytest.fixture(scope="session")
def iris_rf(iris):
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)


@pytest.fixture(scope="session")
def saved_lr(iris, iris_lr, tmp_path_factory) -> str:
    """An iris LogisticRegression saved with a DataFrame sample; returns its path."""
    import mlem_lib.api as mlem

    path = str(tmp_path_factory.mktemp("models") / "lr")
    mlem.save(iris_lr, path, sample_data=iris[0], description="iris logistic regression")
    return path


@pytest.fixture(scope="session")
def saved_rf(iris, iris_rf, tmp_path_factory) -> str:
    import mlem_lib.api as mlem

    path = str(tmp_path_factory.mktemp("models") / "rf")
    mlem.save(iris_rf, path, sample_data=iris[0])
    return path


@pytest.fixture(scope="session")
def moto_server():
    """moto in server mode on 127.0.0.1 with fake credentials in the environment.

    Yields the endpoint URL; ``AWS_ENDPOINT_URL`` points at it for the whole session so
    boto3 and s3fs talk to it.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                            "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    yield url
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_bucket(moto_server) -> str:
    """A fresh, empty bucket on the moto server; returns its name."""
    import uuid

    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=name)
    return name
