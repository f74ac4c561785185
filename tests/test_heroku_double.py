"""The Heroku double cleans up after itself: every dyno it ever started (a container or a
local process) is gone after :meth:`HerokuDouble.stop`, also one that a restart was
bringing up while the double stopped (a release finishing as the test ends)."""

from __future__ import annotations

import contextlib
import io
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests._fixtures.deploy import HEROKU_TEST_KEY
from tests.doubles.heroku_api import ACCEPT, ACCEPT_DOCKER, DockerDynos, HerokuDouble, ProcessDynos

HEADERS = {"Authorization": f"Bearer {HEROKU_TEST_KEY}", "Accept": ACCEPT}


def _client(double: HerokuDouble) -> httpx.Client:
    return httpx.Client(transport=double.transport(), base_url="https://api.heroku.com",
                        headers=HEADERS)


def _until(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _release_phase_over(api: httpx.Client, app: str, version: int) -> Callable[[], bool]:
    def check() -> bool:
        r = api.get(f"/apps/{app}/releases/{version}")
        return bool(r.status_code == 200 and r.json()["status"] == "succeeded")
    return check


def _dyno_on(api: httpx.Client, app: str, version: int, state: str | None = None
             ) -> Callable[[], bool]:
    def check() -> bool:
        dynos = api.get(f"/apps/{app}/dynos").json()
        return any(d["release"]["version"] == version and state in (None, d["state"])
                   for d in dynos)
    return check


def _replace_dyno_and_stop(double: HerokuDouble, app: str, image: str,
                           booted: bool) -> None:
    """Release ``image`` on ``app``; once its dyno runs (is ``up`` when ``booted``), make a
    config-var release and stop the double while that release restarts the dyno."""
    api = _client(double)
    assert api.post("/apps", json={"name": app, "stack": "container"}).status_code == 201
    r = api.patch(f"/apps/{app}/formation", headers={"Accept": ACCEPT_DOCKER},
                  json={"updates": [{"type": "web", "docker_image": image}]})
    assert r.status_code == 200, r.text
    _until("the first dyno", _dyno_on(api, app, 1, "up" if booted else None))
    assert api.patch(f"/apps/{app}/config-vars", json={"A": "1"}).status_code == 200
    # v2 succeeded: the double is replacing v1's dyno with v2's right now
    _until("the config-var release", _release_phase_over(api, app, 2))
    double.stop()
    for timer in double.timers:  # a restart still under way comes to its end
        timer.join(60)


# --- Docker dynos -----------------------------------------------------------------------

@pytest.fixture
def sleeper_image(docker_client: Any, docker_registry: tuple[str, str, str],
                  docker_base_image: str) -> Iterator[tuple[str, str]]:
    """``(app, image id)``: an image that only sleeps, pushed as ``APP/web:latest``; a label
    makes its id unique to this test run, so the containers it runs are this test's."""
    address, user, password = docker_registry
    app = f"leak-{uuid.uuid4().hex[:8]}"
    dockerfile = (f"FROM {docker_base_image}\nLABEL mlem.test.run={app}\n"
                  'CMD ["sleep", "infinity"]\n')
    image, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()),
                                          rm=True, forcerm=True)
    repo = f"{address}/{app}/web"
    image.tag(repo, "latest")
    for line in docker_client.images.push(repo, tag="latest", stream=True, decode=True,
                                          auth_config={"username": user, "password": password}):
        assert "error" not in line, line
    yield app, str(image.id)
    with contextlib.suppress(Exception):
        docker_client.images.remove(f"{repo}:latest", force=True)


@pytest.mark.docker
def test_stop_removes_the_container_a_restart_was_starting(docker_client, docker_registry,
                                                           sleeper_image):
    app, image = sleeper_image
    double = HerokuDouble(HEROKU_TEST_KEY, DockerDynos(docker_client, docker_registry),
                          release_delay=0.05)
    try:
        _replace_dyno_and_stop(double, app, image, booted=False)
    finally:
        double.stop()
    left = docker_client.containers.list(all=True, filters={"ancestor": image})
    for container in left:  # leave the engine clean even when the assertion fails
        container.remove(force=True)
    assert [c.name for c in left] == []


# --- process dynos ----------------------------------------------------------------------

def _serving(model: str) -> list[int]:
    """PIDs of this process's children that serve ``model``."""
    import psutil

    pids = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.environ().get("MLEM_MODEL") == model:
                pids.append(child.pid)
    return pids


def test_stop_stops_the_process_a_restart_was_starting(saved_lr):
    from mlem_lib.deploy.local import stop_pid

    before = set(_serving(saved_lr))
    double = HerokuDouble(HEROKU_TEST_KEY, ProcessDynos({"sha256:lr": saved_lr}),
                          release_delay=0.05)
    try:
        _replace_dyno_and_stop(double, "leak-proc", "sha256:lr", booted=True)
    finally:
        double.stop()
    left = sorted(set(_serving(saved_lr)) - before)
    for pid in left:
        stop_pid(pid)
    assert left == []
