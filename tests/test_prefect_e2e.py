"""End to end with real parts: a ``prefect server``, the repository's ``prefect.yaml``
deployed with ``prefect deploy --all``, runs started with ``prefect deployment run``
and executed by ``prefect worker start --run-once`` (a process work pool), a git +
DVC registry and a model server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests._fixtures.prefect import write_declaration
from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.slow

PREFECT = str(Path(sys.executable).parent / "prefect")
POOL = "mlem-process"


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``prefect server start`` on a free port with its own PREFECT_HOME; yields the env."""
    home = tmp_path_factory.mktemp("prefect-e2e-home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_API_URL=f"http://127.0.0.1:{port}/api", DVC_NO_ANALYTICS="1",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed in teardown
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port",
                               str(port), "--no-ui"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("prefect server did not become healthy:\n"
                                     + (home / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield env
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server's own process group
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


def _run(args: list[str], env: dict[str, str], cwd: str | Path | None = None,
         timeout: float = 300) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _project(tmp_path: Path, repo: str, declaration: str) -> Path:
    """A copy of the repository's prefect.yaml context pointed at the test's registry."""
    project = tmp_path / "project"
    project.mkdir()
    for folder in ("flows", "tasks"):
        shutil.copytree(REPO_ROOT / folder, project / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    for deployment in config["deployments"]:
        params = next(iter(deployment.get("parameters", {}).values()), {})
        if "repo" in params:
            params["repo"] = repo
        if "declaration" in params:
            params["declaration"] = declaration
        for schedule in deployment.get("schedules") or []:
            schedule["active"] = False  # no cron run may race the runs started below
    (project / "prefect.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def _start_and_work(deployment: str, params: dict[str, object], env: dict[str, str],
                    cwd: Path) -> dict[str, object]:
    """``prefect deployment run`` then ``prefect worker start --run-once``; the run's JSON."""
    out = _run([PREFECT, "deployment", "run", deployment, "--params", json.dumps(params)],
               env, cwd)
    run_id = re.findall(r"flow-run/([0-9a-f-]{36})", out)[-1]
    _run([PREFECT, "worker", "start", "--pool", POOL, "--run-once"], env, cwd, timeout=600)
    flow_run = httpx.get(f"{env['PREFECT_API_URL']}/flow_runs/{run_id}", timeout=10).json()
    assert flow_run["state"]["type"] == "COMPLETED", flow_run["state"]
    return dict(flow_run)


def test_deploy_all_then_rollout_and_redeploy_through_a_worker(
        tmp_path, prefect_server, iris, iris_registry, deployments):
    import mlem_lib.api as mlem

    env = prefect_server
    repo, v1, v2 = iris_registry["repo"], iris_registry["v1"], iris_registry["v2"]
    declaration = write_declaration(str(tmp_path / "deploy"), "e2e", free_port())
    deployments.append(declaration)
    project = _project(tmp_path, repo, declaration)
    env = {**env, "PWD": str(project)}  # the pull step's directory is resolved from $PWD

    _run([PREFECT, "work-pool", "create", POOL, "--type", "process"], env, project)
    out = _run([PREFECT, "--no-prompt", "deploy", "--all"], env, project)
    for name in ("redeploy-stage/redeploy-prod", "rollout-model/rollout",
                 "register-saved-model/register-saved", "package-model/package",
                 "train-iris/train-iris"):
        assert f"'{name}'" in out, name

    # the parameter schema (pydantic) is enforced before a run is created
    bad = subprocess.run([PREFECT, "deployment", "run", "rollout-model/rollout", "--params",
                          json.dumps({"request": {"model": "iris#prod", "smoke_timeout": -1}})],
                         env=env, cwd=project, capture_output=True, text=True, timeout=120,
                         check=False)
    assert bad.returncode != 0 and "smoke_timeout" in bad.stdout + bad.stderr

    # roll out the version at prod
    mlem.assign("iris", "prod", version=v1, repo=repo)
    _start_and_work("rollout-model/rollout",
                    {"request": {"model": "iris#prod", "repo": repo,
                                 "declaration": declaration}}, env, project)
    url = mlem.status(declaration).url
    rows = iris[0].head(3).to_dict("records")
    answer = httpx.post(f"{url}/predict", json={"data": rows}, timeout=30)
    assert answer.status_code == 200 and answer.json() == [0, 0, 0]
    assert mlem.status(declaration).model_hash == iris_registry["hash1"]

    # the scheduled redeploy rolls out the version that moved to prod...
    mlem.assign("iris", "prod", version=v2, repo=repo)
    redeploy = {"request": {"name": "iris", "stage": "prod", "repo": repo,
                            "declaration": declaration}}
    _start_and_work("redeploy-stage/redeploy-prod", redeploy, env, project)
    assert mlem.status(declaration).model_hash == iris_registry["hash2"]
    state_file = Path(declaration).with_name("e2e.state.json")
    before = state_file.read_text()

    # ...and a second run with the stage unchanged does nothing
    _start_and_work("redeploy-stage/redeploy-prod", redeploy, env, project)
    assert state_file.read_text() == before
    answer = httpx.post(f"{url}/predict", json={"data": rows}, timeout=30)
    assert answer.status_code == 200 and answer.json() == [0, 0, 0]
