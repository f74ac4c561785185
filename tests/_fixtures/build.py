"""Fixtures for the build tests, reusable by any test that needs Docker (loaded by conftest.py).

The engine, base image and registry come from ``scripts/docker-env.sh``
(``eval "$(scripts/docker-env.sh all)"``). Where ``CI`` is set a missing piece
fails the test; elsewhere it skips it.

* ``docker_client``: a pinged ``docker.DockerClient`` for ``DOCKER_HOST``.
* ``docker_base_image``: the test base image (``MLEM_TEST_BASE_IMAGE``, default
  ``mlem-test-base:latest``: python:3.11-slim plus the host's CA bundle and pip
  config so builds can ``pip install``).
* ``docker_registry``: ``(host:port, user, password)`` of the local registry.
* ``iris_image``: a :class:`~mlem_lib.build.docker.DockerImage` serving ``saved_rf``,
  built once per session.
* ``run_container``: start a container on the host network with ``PORT`` set and
  wait until ``/ping`` answers; every container is removed at teardown.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import free_port, skip_or_fail

DOCKER_ENV_HINT = 'run: eval "$(scripts/docker-env.sh all)"'
DEFAULT_SOCKET = "/tmp/mlem-docker/docker.sock"  # where scripts/docker-env.sh puts it
TEST_IMAGE_REPO = "mlem-test-iris"


def missing(reason: str) -> None:
    """Skip the test, or fail it where ``CI`` is set."""
    skip_or_fail(f"{reason} ({DOCKER_ENV_HINT})")


def wait_http(url: str, timeout: float = 90.0, container: Any = None) -> None:
    """Poll ``url`` until it answers 200; fail with the container's log if it exits."""
    import httpx

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = str(exc)
        if container is not None:
            container.reload()
            if container.status in ("exited", "dead"):
                logs = container.logs().decode(errors="replace")[-3000:]
                pytest.fail(f"container exited before {url} answered:\n{logs}")
        time.sleep(0.2)
    logs = container.logs().decode(errors="replace")[-3000:] if container is not None else ""
    pytest.fail(f"{url} did not answer within {timeout} s ({last})\n{logs}")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    if not os.environ.get("DOCKER_HOST") and os.path.exists(DEFAULT_SOCKET):
        os.environ["DOCKER_HOST"] = f"unix://{DEFAULT_SOCKET}"
    from mlem_lib.build.docker import docker_client as make_client
    from mlem_lib.errors import DockerUnavailableError

    try:
        client = make_client()
    except DockerUnavailableError as exc:
        missing(str(exc))
    yield client
    client.close()


@pytest.fixture(scope="session")
def docker_base_image(docker_client: Any) -> str:
    import docker.errors

    name = os.environ.get("MLEM_TEST_BASE_IMAGE", "mlem-test-base:latest")
    try:
        docker_client.images.get(name)
    except docker.errors.ImageNotFound:
        missing(f"base image {name} is missing")
    return name


@pytest.fixture(scope="session")
def docker_registry(docker_client: Any) -> tuple[str, str, str]:
    import httpx

    address = os.environ.get("MLEM_TEST_REGISTRY", "127.0.0.1:5055")
    user = os.environ.get("MLEM_TEST_REGISTRY_USER", "mlem")
    password = os.environ.get("MLEM_TEST_REGISTRY_PASSWORD", "mlem-test-pass")
    try:
        code = httpx.get(f"http://{address}/v2/", auth=(user, password), timeout=3.0,
                         trust_env=False).status_code
    except httpx.HTTPError as exc:
        missing(f"no image registry at {address}: {exc}")
    if code != 200:
        missing(f"the registry at {address} answers {code} with the test credentials")
    return address, user, password


@pytest.fixture(scope="session")
def iris_image(docker_client: Any, docker_base_image: str, saved_rf: str) -> Any:
    """The iris random forest as an image (``mlem-test-iris:session``)."""
    import mlem_lib.api as mlem

    return mlem.build(saved_rf, "docker", {"image": f"{TEST_IMAGE_REPO}:session",
                                           "base": docker_base_image,
                                           "model_version": "v-session"})


@pytest.fixture
def run_container(docker_client: Any) -> Iterator[Callable[..., tuple[Any, str]]]:
    """``run_container(image, env=None, command=None)`` -> (container, base URL)."""
    started: list[Any] = []

    def start(image: str, env: dict[str, str] | None = None,
              command: list[str] | None = None, port_env: str = "PORT",
              ready_path: str = "/ping") -> tuple[Any, str]:
        port = free_port()
        environment = {port_env: str(port), **(env or {})}
        container = docker_client.containers.run(image, command=command, detach=True,
                                                 network_mode="host", environment=environment)
        started.append(container)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + ready_path, container=container)
        return container, url

    yield start
    for container in started:
        with contextlib.suppress(Exception):  # already gone
            container.remove(force=True)
