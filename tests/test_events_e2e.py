"""GitOps through Prefect, for real: ``mlem registry assign`` on a machine with
``PREFECT_API_URL`` set emits ``mlem.model.stage-assigned``; the trigger of the
repository's ``prefect.yaml`` makes a ``prefect server`` start the ``rollout``
deployment for exactly that version; ``prefect worker start --run-once`` runs it; the
model server's ``/health`` then reports the new model's hash. Every event the run and
the CLI sent is read back from the server."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests._fixtures.prefect import write_declaration
from tests.conftest import REPO_ROOT, free_port
from tests.test_prefect_e2e import PREFECT, prefect_server  # noqa: F401 (fixture)
from tests.test_prefect_e2e import _run as _run_checked

pytestmark = pytest.mark.slow

MLEM = str(Path(sys.executable).parent / "mlem")
POOL = "events-process"


def _project(tmp_path: Path, repo: str) -> Path:
    """The repository's prefect.yaml, its `demo-workspace` pointed at the test's registry
    (trigger included: its templates are kept), schedules off."""
    project = tmp_path / "project"
    project.mkdir()
    text = (REPO_ROOT / "prefect.yaml").read_text().replace("demo-workspace", repo)
    config = yaml.safe_load(text)
    for deployment in config["deployments"]:
        deployment["work_pool"]["name"] = POOL
        for schedule in deployment.get("schedules") or []:
            schedule["active"] = False
    (project / "prefect.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    start = time.monotonic()
    out = _run_checked(args, env, cwd, timeout=timeout)
    print(f"{' '.join(Path(a).name for a in args[:3])}: {time.monotonic() - start:.1f} s")
    return out


def _api(env: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    answer = httpx.post(f"{env['PREFECT_API_URL']}/{path}", json=body, timeout=30)
    assert answer.status_code < 300, answer.text
    return answer.json()


def _wait_for(what: str, probe: Any, timeout: float = 120) -> Any:
    start = time.monotonic()
    deadline = start + timeout
    while True:
        found = probe()
        if found:
            print(f"{what}: {time.monotonic() - start:.1f} s")
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


def _events(env: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    page = _api(env, "events/filter", {"filter": {"event": {"prefix": ["mlem."]},
                                                  "order": "ASC"}, "limit": 50})
    out: dict[str, list[dict[str, Any]]] = {}
    for event in page["events"]:
        out.setdefault(event["event"], []).append(event)
    return out


def _health(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/health", timeout=10).json())


def test_assigning_prod_from_the_cli_rolls_that_version_out_through_the_trigger(
        tmp_path, prefect_server, iris, iris_registry, deployments):  # noqa: F811
    import mlem_lib.api as mlem

    env = prefect_server
    repo, v1, v2 = iris_registry["repo"], iris_registry["v1"], iris_registry["v2"]
    # the trigger's declaration is <registry>/.deploy/<model>-local.yaml
    declaration = write_declaration(str(Path(repo) / ".deploy"), "iris-local", free_port())
    deployments.append(declaration)
    project = _project(tmp_path, repo)
    env = {**env, "PWD": str(project)}
    _run([PREFECT, "work-pool", "create", POOL, "--type", "process"], env, project)
    _run([PREFECT, "--no-prompt", "deploy", "--name", "rollout"], env, project)

    # v1 runs (deployed here, where no Prefect API is configured: no event)
    mlem.deploy(declaration, f"iris@{v1}", repo=repo)
    url = mlem.status(declaration).url
    assert _health(url)["model_hash"] == iris_registry["hash1"]
    assert _events(env) == {}

    # a laptop promotes v2: one CLI call, with PREFECT_API_URL set
    start = time.monotonic()
    _run([MLEM, "registry", "assign", "iris", "--stage", "prod", "--version", v2,
          "--repo", repo], env, project)
    assert time.monotonic() - start < 60
    assigned = _wait_for("mlem.model.stage-assigned",
                         lambda: _events(env).get("mlem.model.stage-assigned"), 60)
    assert len(assigned) == 1
    resource = assigned[0]["resource"]
    assert {k: resource.get(k) for k in ("prefect.resource.id", "mlem.model", "mlem.version",
                                         "mlem.stage", "mlem.repo")} == {
        "prefect.resource.id": "mlem.model.iris", "mlem.model": "iris",
        "mlem.version": v2, "mlem.stage": "prod", "mlem.repo": repo}

    # the trigger starts the rollout deployment for exactly that version...
    def triggered() -> list[dict[str, Any]]:
        return list(_api(env, "flow_runs/filter", {
            "deployments": {"name": {"any_": ["rollout"]}}}))
    runs = _wait_for("the triggered flow run", triggered)
    assert len(runs) == 1
    assert runs[0]["parameters"]["request"] == {
        "model": f"iris@{v2}", "repo": repo, "declaration": declaration}

    # ...which a worker runs: the deployment now serves v2
    _run([PREFECT, "worker", "start", "--pool", POOL, "--run-once"], env, project,
         timeout=600)
    run = httpx.get(f"{env['PREFECT_API_URL']}/flow_runs/{runs[0]['id']}", timeout=10).json()
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert _health(url)["model_hash"] == iris_registry["hash2"]
    rows = iris[0].head(3).to_dict("records")
    assert httpx.post(f"{url}/predict", json={"data": rows}, timeout=30).status_code == 200

    # the rollout inside the flow run announced itself, related to that run
    rolled = _wait_for("mlem.deployment.rolled-out",
                       lambda: _events(env).get("mlem.deployment.rolled-out"), 60)
    assert rolled[0]["resource"]["prefect.resource.id"] == "mlem.deployment.iris-local"
    assert rolled[0]["resource"]["mlem.version"] == v2
    assert rolled[0]["resource"]["mlem.model-hash"] == iris_registry["hash2"]
    roles = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in rolled[0]["related"]}
    assert roles["model"] == "mlem.model.iris"
    assert roles["flow-run"] == f"prefect.flow-run.{runs[0]['id']}"

    # rolling back from the CLI is an event too, and v1 answers again
    _run([MLEM, "deployment", "rollback", declaration], env, project)
    assert _health(url)["model_hash"] == iris_registry["hash1"]
    back = _wait_for("mlem.deployment.rolled-back",
                     lambda: _events(env).get("mlem.deployment.rolled-back"), 60)
    assert back[0]["resource"]["mlem.model-hash"] == iris_registry["hash1"]
    assert back[0]["payload"]["previous_model_hash"] == iris_registry["hash2"]

    # registering from the CLI is announced as well (and triggers nothing)
    mlem.save(_identity, str(Path(repo) / "models" / "ident"), sample_data=[1, 2])
    _run([MLEM, "registry", "register", "models/ident", "--repo", repo], env, project)
    registered = _wait_for("mlem.model.registered",
                           lambda: _events(env).get("mlem.model.registered"), 60)
    assert [e["resource"]["mlem.model"] for e in registered] == ["ident"]
    assert json.dumps(registered[0]["payload"]).count("ident@v0.0.1") == 1
    assert len(triggered()) == 1

    # the `assign` deployment's flow announces from inside its run; staging triggers nothing
    code = ("from mlem_lib.prefect.flows import AssignRequest, assign_model\n"
            f"print(assign_model(AssignRequest(name='iris', stage='staging', version={v1!r}, "
            f"repo={repo!r})).tag)\n")
    _run([sys.executable, "-c", code], env, project)
    staged = _wait_for("mlem.model.stage-assigned to staging", lambda: [
        e for e in _events(env).get("mlem.model.stage-assigned", [])
        if e["resource"]["mlem.stage"] == "staging"], 60)
    assert staged[0]["resource"]["mlem.version"] == v1
    roles = {r["prefect.resource.role"] for r in staged[0]["related"]}
    assert {"registry", "flow-run"} <= roles, staged[0]["related"]
    assert len(triggered()) == 1


def _identity(x: Any) -> Any:
    return x
