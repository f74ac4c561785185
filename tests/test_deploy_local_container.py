"""The local target with the container runtime: a real image on a real Docker engine."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from mlem_lib.deploy import deploy, remove, rollback, status
from mlem_lib.errors import SmokeTestError
from tests._fixtures.cloud import model_hash
from tests.conftest import free_port


@pytest.fixture
def container_decl(declare, removed_after, docker_client, docker_base_image):
    # a name of its own: containers are found by the deployment's name label, and other
    # runs of this test may share the engine
    return removed_after(declare(f"box-{uuid.uuid4().hex[:8]}", type="local",
                                 runtime="container", port=free_port(),
                                 base=docker_base_image, wait_timeout=120))


def _served(url: str, rows) -> tuple[str, list[int]]:
    """(the model hash the server reports on /health, its answers on ``rows``)."""
    health = httpx.get(f"{url}/health", timeout=10, trust_env=False).json()
    r = httpx.post(f"{url}/predict", json={"data": {"values": rows.to_dict("records")}},
                   timeout=30, trust_env=False)
    return health["model_hash"], r.json()


def test_container_update_serves_the_new_version(container_decl, saved_lr, saved_lr_v2,
                                                 identity_rows):
    first = deploy(container_decl, saved_lr, progress=False)
    assert _served(first.url, identity_rows) == (model_hash(saved_lr), [0, 1, 2])
    second = deploy(container_decl, saved_lr_v2, progress=False)
    assert _served(second.url, identity_rows) == (model_hash(saved_lr_v2), [1, 2, 0])
    back = rollback(container_decl, progress=False)
    assert _served(back.url, identity_rows) == (model_hash(saved_lr), [0, 1, 2])


def test_container_deploy_rollback_and_remove(container_decl, docker_client, saved_lr,
                                              broken_lr, iris):
    from docker.errors import NotFound

    name = Path(container_decl).stem  # the deployment's name, its containers' label
    state = deploy(container_decl, saved_lr, progress=False)
    container = docker_client.containers.get(state.target["container_id"])
    assert container.status == "running"
    assert container.image.id == state.image_id
    X, _ = iris
    r = httpx.post(f"{state.url}/predict", json={"data": {"values": X.head(2).to_dict("records")}},
                   trust_env=False)
    assert r.status_code == 200 and len(r.json()) == 2
    assert deploy(container_decl, saved_lr, progress=False) == state  # no-op

    with pytest.raises(SmokeTestError, match="HTTP 500"):
        deploy(container_decl, broken_lr, progress=False)
    st = status(container_decl)
    assert st.healthy and st.model_hash == state.model_hash
    assert _served(state.url, iris[0].iloc[[0, 50, 100]])[0] == state.model_hash
    container.reload()
    assert container.status == "running"  # the running version never stopped
    assert [c.id for c in docker_client.containers.list(
        all=True, filters={"label": f"mlem.deployment={name}"})] == [container.id]

    # a container an interrupted run started but never recorded
    leftover = docker_client.containers.run(
        state.image_id, detach=True, network_mode="host", labels={"mlem.deployment": name},
        environment={"PORT": str(free_port()), "MLEM_HOST": "127.0.0.1"})
    remove(container_decl)
    for gone in (state.target["container_id"], leftover.id):
        with pytest.raises(NotFound):
            docker_client.containers.get(gone)
    assert status(container_decl).deployed is False
    remove(container_decl)  # already gone
