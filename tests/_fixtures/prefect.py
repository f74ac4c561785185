"""Fixtures for the prefect tests (loaded by conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

PREFECT_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
}


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A hermetic Prefect API (embedded server, temporary database) for the whole session.

    ``PREFECT_HOME`` points into a temporary folder; the variables are also exported so
    processes started by the tests (Dask workers, ``prefect`` CLI calls) see them.
    """
    home = tmp_path_factory.mktemp("prefect-home")
    env = {**PREFECT_ENV, "PREFECT_HOME": str(home)}
    saved = {k: os.environ.get(k) for k in [*env, "PREFECT_API_URL"]}
    os.environ.update(env)
    os.environ.pop("PREFECT_API_URL", None)
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    try:
        with temporary_settings(updates={
                PREFECT_HOME: str(home), PREFECT_SERVER_ANALYTICS_ENABLED: False,
                PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 120}), \
                prefect_test_harness(server_startup_timeout=120):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- workspaces and deployments for the tasks/flows tests (engineer P) -------------------

def make_workspace(path: str) -> str:
    """A git + DVC repository with a local DVC remote (what ``train_iris`` creates)."""
    from mlem_lib.prefect.tasks.workspace import ensure_workspace

    return str(ensure_workspace.fn(path))


def write_declaration(folder: str, name: str, port: int, runtime: str = "process") -> str:
    """A ``type: local`` declaration for a model server on 127.0.0.1:``port``."""
    import yaml

    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({"type": "local", "name": name, "runtime": runtime,
                        "host": "127.0.0.1", "port": port, "wait_timeout": 120}, f)
    return path


@pytest.fixture(scope="module")
def iris_registry(tmp_path_factory: pytest.TempPathFactory, iris, iris_lr, iris_rf
                  ) -> dict[str, str]:
    """A workspace where ``iris`` has v0.0.1 (logistic regression) and v0.0.2 (forest).

    Returns ``{"repo", "v1", "v2", "hash1", "hash2"}``.
    """
    import mlem_lib.api as mlem

    root = make_workspace(str(tmp_path_factory.mktemp("registry") / "ws"))
    path = os.path.join(root, "models", "iris")
    out = {"repo": root}
    for key, model in (("1", iris_lr), ("2", iris_rf)):
        meta = mlem.save(model, path, sample_data=iris[0])
        registered = mlem.register("models/iris", repo=root)
        out[f"v{key}"] = registered.version
        out[f"hash{key}"] = getattr(meta, "model_hash", "")
    return out


@pytest.fixture
def deployments() -> Iterator[list[str]]:
    """Declarations the test deployed; each is removed (its server stopped) afterwards."""
    declared: list[str] = []
    yield declared
    import mlem_lib.api as mlem

    for path in declared:
        try:
            mlem.remove(path)
        except Exception as exc:  # teardown must try every declaration
            print(f"could not remove {path}: {exc}")
