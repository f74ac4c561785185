"""The local target with the container runtime: a real image on a real Docker engine."""

from __future__ import annotations

import httpx
import pytest

from mlem_lib.deploy import deploy, remove, status
from mlem_lib.errors import RolledBackError, SmokeTestError
from tests.conftest import free_port


@pytest.fixture
def container_decl(declare, removed_after, docker_client, docker_base_image):
    return removed_after(declare("box", type="local", runtime="container", port=free_port(),
                                 base=docker_base_image, wait_timeout=120))


def test_container_deploy_rollback_and_remove(container_decl, docker_client, saved_lr,
                                              broken_lr, iris):
    from docker.errors import NotFound

    state = deploy(container_decl, saved_lr, progress=False)
    container = docker_client.containers.get(state.target["container_id"])
    assert container.status == "running"
    assert container.image.id == state.image_id
    X, _ = iris
    r = httpx.post(f"{state.url}/predict", json={"data": {"values": X.head(2).to_dict("records")}},
                   trust_env=False)
    assert r.status_code == 200 and len(r.json()) == 2
    assert deploy(container_decl, saved_lr, progress=False) == state  # no-op

    with pytest.raises(RolledBackError, match="HTTP 500") as failed:
        deploy(container_decl, broken_lr, progress=False)
    assert isinstance(failed.value.reason, SmokeTestError)
    st = status(container_decl)
    assert st.healthy and st.model_hash == state.model_hash
    container.reload()
    assert container.status == "running"  # the previous container was started again
    assert not docker_client.containers.list(
        all=True, filters={"label": "mlem.deployment=box", "status": "exited"})

    # a container an interrupted run started but never recorded
    leftover = docker_client.containers.run(
        state.image_id, detach=True, network_mode="host", labels={"mlem.deployment": "box"},
        environment={"PORT": str(free_port()), "MLEM_HOST": "127.0.0.1"})
    remove(container_decl)
    for gone in (state.target["container_id"], leftover.id):
        with pytest.raises(NotFound):
            docker_client.containers.get(gone)
    assert status(container_decl).deployed is False
    remove(container_decl)  # already gone
