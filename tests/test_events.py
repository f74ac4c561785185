"""Events of register / assign / deploy / rollback: sent only when a Prefect API is
configured, and never slowing or failing the operation when it is not, or cannot be
reached. (The real delivery to a Prefect server, and the trigger it fires, are in
tests/test_events_e2e.py.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlem_lib import events, plugins
from mlem_lib.prefect.events import configured_api_url, prefect_resources

MLEM = str(Path(sys.executable).parent / "mlem")


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLEM_EVENTS"))}
    home = tmp_path / "prefect-home"
    home.mkdir(exist_ok=True)
    env.update(PREFECT_HOME=str(home), DVC_NO_ANALYTICS="1", **extra)
    return env


def _closed_port() -> int:
    """A port nobody listens on (bound, then released: connecting is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_prefect_listener_is_found_through_its_entry_point_and_reads_profiles(tmp_path):
    assert "prefect" in plugins.names("listeners")
    assert configured_api_url({"PREFECT_HOME": str(tmp_path)}) is None
    assert configured_api_url({"PREFECT_API_URL": ""}) is None
    (tmp_path / "profiles.toml").write_text(
        'active = "remote"\n[profiles.remote]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n'
        '[profiles.local]\n')
    assert configured_api_url({"PREFECT_HOME": str(tmp_path)}) == "http://127.0.0.1:4200/api"
    assert configured_api_url({"PREFECT_HOME": str(tmp_path),
                               "PREFECT_PROFILE": "local"}) is None


def test_events_name_model_version_stage_repo_and_deployment(tmp_path):
    assigned = events.model_event(events.STAGE_ASSIGNED, name="iris", version="v0.0.2",
                                  stage="prod", repo=str(tmp_path), tag="iris#prod#3",
                                  commit="c" * 40)
    resource, related = prefect_resources(assigned)
    assert resource == {"prefect.resource.id": "mlem.model.iris",
                        "prefect.resource.name": "iris", "mlem.model": "iris",
                        "mlem.version": "v0.0.2", "mlem.stage": "prod",
                        "mlem.repo": str(tmp_path), "mlem.tag": "iris#prod#3"}
    assert related == [{"prefect.resource.id": f"mlem.registry.{tmp_path}",
                        "prefect.resource.role": "registry", "mlem.repo": str(tmp_path)}]

    rolled = events.deployment_event(events.ROLLED_OUT, deployment="iris-prod",
                                     target="local", model_hash="h2", url="http://x",
                                     model="iris#prod", repo=str(tmp_path),
                                     previous_hash="h1")
    resource, related = prefect_resources(rolled)
    assert resource["prefect.resource.id"] == "mlem.deployment.iris-prod"
    assert (resource["mlem.deployment"], resource["mlem.model"], resource["mlem.stage"],
            resource["mlem.model-hash"], resource["mlem.repo"]) == (
        "iris-prod", "iris", "prod", "h2", str(tmp_path))
    assert [r["prefect.resource.role"] for r in related] == ["model", "registry"]
    assert rolled.payload["previous_model_hash"] == "h1"

    by_path = events.deployment_event(events.ROLLED_BACK, deployment="d", target="local",
                                      model_hash="h1", url=None, model="models/rf",
                                      repo=str(tmp_path))
    assert by_path.labels == {"mlem.deployment": "d", "mlem.target": "local",
                              "mlem.model-hash": "h1", "mlem.model": "models/rf"}


def test_a_failing_or_slow_listener_costs_one_warning_and_never_the_operation(
        monkeypatch, caplog):
    calls: list[str] = []

    class Broken:
        def active(self) -> bool:
            return True

        def __call__(self, event: events.Event) -> None:
            calls.append(event.event)
            raise ConnectionRefusedError("connection refused")

    class Slow(Broken):
        def __call__(self, event: events.Event) -> None:
            time.sleep(5)

    class Quiet(Broken):
        def active(self) -> bool:
            return False

    built: list[int] = []

    def build() -> events.Event:
        built.append(1)
        return events.model_event(events.MODEL_REGISTERED, name="m", version="v1.0.0",
                                  repo=None)

    monkeypatch.setenv("MLEM_EVENTS_TIMEOUT", "0.5")
    for name, listener in (("broken", Broken()), ("slow", Slow()), ("quiet", Quiet())):
        plugins.register("listeners", name, listener)
    try:
        start = time.monotonic()
        assert events.emit(build) == 0
        assert time.monotonic() - start < 3
        assert calls == ["mlem.model.registered"] and built == [1]
        warnings = [r.getMessage() for r in caplog.records if r.name == "mlem_lib.events"]
        assert any("not sent to broken: connection refused" in w for w in warnings)
        assert any("not confirmed by slow within" in w for w in warnings)
        assert not any("quiet" in w for w in warnings)

        monkeypatch.setenv("MLEM_EVENTS", "off")
        assert events.emit(build) == 0 and built == [1]  # not even built
    finally:
        for name in ("broken", "slow", "quiet"):
            plugins.unregister("listeners", name)


@pytest.fixture(scope="module")
def registry(iris_registry) -> dict[str, str]:
    return iris_registry


def _assign(registry: dict[str, str], stage: str, env: dict[str, str]
            ) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = subprocess.run([MLEM, "registry", "assign", "iris", "--stage", stage,
                           "--version", registry["v1"], "--repo", registry["repo"]],
                          env=env, capture_output=True, text=True, timeout=120)
    return done, time.monotonic() - start


def test_without_a_prefect_api_nothing_imports_prefect(registry, tmp_path):
    code = ("import sys, mlem_lib.api as mlem\n"
            f"mlem.assign('iris', 'qa', version={registry['v1']!r}, repo={registry['repo']!r})\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))\n")
    done = subprocess.run([sys.executable, "-c", code], env=_clean_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert done.stderr == ""


def test_an_unreachable_prefect_api_is_one_warning_and_the_assignment_stands(
        registry, tmp_path):
    env = _clean_env(tmp_path, PREFECT_API_URL=f"http://127.0.0.1:{_closed_port()}/api")
    done, seconds = _assign(registry, "staging", env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "mlem.model.stage-assigned not sent to prefect: Prefect API http://127.0.0.1:" \
        in lines[0] and "unreachable" in lines[0]
    assert seconds < float(events.DEFAULT_TIMEOUT) + 10
    tags = subprocess.run(["git", "tag"], cwd=registry["repo"], capture_output=True,
                          text=True, check=True).stdout.split()
    assert any(t.startswith("iris#staging#") for t in tags)
