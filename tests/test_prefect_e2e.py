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
from typing import Any

import httpx
import pytest
import yaml

from mlem_lib.prefect.flows.params import NAME_PATTERN
from tests._fixtures.prefect import make_workspace, write_declaration
from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.slow

PREFECT = str(Path(sys.executable).parent / "prefect")
POOL = "mlem-process"


def _listening_port(pid: int) -> int | None:
    """The TCP port the process ``pid`` (or a child of it) listens on, if any yet."""
    import psutil

    process = psutil.Process(pid)
    for proc in (process, *process.children(recursive=True)):
        for conn in proc.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                return int(conn.laddr.port)
    return None


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``prefect server start`` on a port the OS picks, with its own PREFECT_HOME; yields
    the environment that points the CLI at it."""
    home = tmp_path_factory.mktemp("prefect-e2e-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DVC_NO_ANALYTICS="1", NO_PROXY="127.0.0.1,localhost",
               no_proxy="127.0.0.1,localhost")
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed in teardown
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port",
                               "0", "--no-ui"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            port = _listening_port(server.pid) if server.poll() is None else None
            try:
                if port and httpx.get(f"http://127.0.0.1:{port}/api/health",
                                      timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("prefect server did not become healthy:\n"
                                     + (home / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
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


def _registered_schema(env: dict[str, str], deployment: str) -> dict[str, Any]:
    """The parameter schema the server holds for ``flow-name/deployment-name``."""
    url = f"{env['PREFECT_API_URL']}/deployments/name/{deployment}"
    return dict(httpx.get(url, timeout=10).json()["parameter_openapi_schema"])


def _start_and_work(deployment: str, params: dict[str, object], env: dict[str, str],
                    cwd: Path, pool: str = POOL) -> dict[str, object]:
    """``prefect deployment run`` then ``prefect worker start --run-once``; the run's JSON."""
    out = _run([PREFECT, "deployment", "run", deployment, "--params", json.dumps(params)],
               env, cwd)
    run_id = re.findall(r"flow-run/([0-9a-f-]{36})", out)[-1]
    _run([PREFECT, "worker", "start", "--pool", pool, "--run-once"], env, cwd, timeout=600)
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

    # the parameter schema the server holds is the flows' own, described field by field
    for name in ("rollout-model/rollout", "redeploy-stage/redeploy-prod"):
        schema = _registered_schema(env, name)
        assert schema["properties"]["request"]["description"]
        request = schema["definitions"][schema["properties"]["request"]["$ref"].split("/")[-1]]
        assert all(prop.get("description") for prop in request["properties"].values()), name
        stage = request["properties"]["stage"]
        assert NAME_PATTERN in [option.get("pattern") for option in stage.get("anyOf", [stage])]
        assert "credentials" in request["properties"]
        assert not {"aws_credentials_block", "heroku_credentials_block"} & set(
            request["properties"])

    # ...and enforced before a run is created, with messages that show the real rule
    for params, expected in (({"model": "iris#prod", "smoke_timeout": -1}, "smoke_timeout"),
                             ({"model": "iris#prod", "stage": "Bad Stage!"},
                              f"'Bad Stage!' does not match '{NAME_PATTERN}'")):
        bad = subprocess.run([PREFECT, "deployment", "run", "rollout-model/rollout",
                              "--params", json.dumps({"request": params})],
                             env={**env, "COLUMNS": "400"}, cwd=project, capture_output=True,
                             text=True, timeout=120, check=False)
        shown = " ".join((bad.stdout + bad.stderr).split())
        assert bad.returncode != 0 and expected in shown, shown

    # our block types are known to the server and register from the module
    out = _run([PREFECT, "block", "register", "-m", "mlem_lib.prefect.blocks"], env, project)
    assert "Heroku Credentials" in out
    assert "heroku-credentials" in _run([PREFECT, "block", "type", "ls"],
                                        {**env, "COLUMNS": "400"}, project)

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


# A user's Prefect project: its own `tasks` and `flows` packages, with module names that
# mlem_lib's Prefect layer used to install at the top level (`tasks.models`...).
USER_FILES = {
    "tasks/__init__.py": '"""The project\'s own tasks."""\n',
    "tasks/models.py": '''"""The project's own model tasks (a name mlem_lib once shipped)."""
from prefect import task


@task
def train_classifier():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return LogisticRegression(max_iter=300).fit(X, y), X.head(20)
''',
    "flows/__init__.py": '"""The project\'s own flows."""\n',
    "flows/nightly.py": '''"""The project's training flow, using mlem_lib's flow and tasks."""
from prefect import flow

from mlem_lib.prefect.flows import RegisterOptions, register_model
from mlem_lib.prefect.tasks import assign_stage, find_stage_version
from tasks.models import train_classifier


@flow(name="nightly-training")
def nightly_training(repo: str) -> str | None:
    model, sample = train_classifier()
    version = register_model(model, RegisterOptions(name="churn", repo=repo),
                             sample_data=sample)
    assign_stage(version.name, "staging", version=version.version, repo=repo)
    return find_stage_version(version.name, "staging", repo=repo)
''',
}


def test_a_user_project_with_its_own_tasks_and_flows_runs_ours_through_a_worker(
        tmp_path, prefect_server):
    """Its worker runs from the project root, where the project's `tasks` and `flows` come
    first on sys.path: our flow and tasks must still import their own code."""
    env = prefect_server
    registry = make_workspace(str(tmp_path / "registry"))
    project = tmp_path / "user-project"
    for name, text in USER_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    pool = "user-process"
    config = {
        "name": "user-project", "prefect-version": "3.9.1", "build": None, "push": None,
        "pull": [{"prefect.deployments.steps.set_working_directory":
                  {"directory": str(project)}}],
        "deployments": [{"name": "nightly", "entrypoint": "flows/nightly.py:nightly_training",
                         "parameters": {"repo": registry},
                         "work_pool": {"name": pool, "work_queue_name": "default",
                                       "job_variables": {}}}]}
    (project / "prefect.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    _run([PREFECT, "work-pool", "create", pool, "--type", "process"], env, project)
    _run([PREFECT, "--no-prompt", "deploy", "--all"], env, project)
    _start_and_work("nightly-training/nightly", {"repo": registry}, env, project, pool=pool)

    tags = subprocess.run(["git", "tag"], cwd=registry, capture_output=True, text=True,
                          check=True).stdout.split()
    assert sorted(tags) == ["churn#staging#1", "churn@v0.0.1"]
    card = httpx.post(f"{env['PREFECT_API_URL']}/artifacts/filter", timeout=10,
                      json={"artifacts": {"key": {"any_": ["churn-model-card"]}}}).json()
    assert card and "churn@v0.0.1" in card[0]["data"]
