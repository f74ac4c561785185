"""A third-party plugin, installed into a venv, used through every door of mlem_lib.

``tests/fixtures/plugin_dist`` is a distribution as a plugin's author would publish it: a
framework (``toy``, which saves its models as JSON), a data type (``readings``), a build
kind (``toy-card``) and a deployment target (``toy``, whose credentials are a pydantic
model), declared only through entry points in its ``pyproject.toml``. The test builds and
installs it (setuptools, ``--no-deps``) into a fresh venv that sees this project's
environment through a ``.pth`` line, then runs the API, the CLI, the Prefect tasks and the
``rollout_model`` flow in that venv's python, the flow against the session's Prefect
server. No file of mlem_lib is edited and nothing is registered at runtime: this process
does not even know the plugin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT, free_port, uv_command

PLUGIN_SOURCE = REPO_ROOT / "tests" / "fixtures" / "plugin_dist"
CREDENTIALS = {"account": "acme", "token": "secret-of-acme"}
CREDENTIALS_ENV = {"TOY_ACCOUNT": "acme", "TOY_TOKEN": "secret-of-acme"}


class PluginEnv:
    """A venv with the plugin installed, and a working folder for its runs."""

    def __init__(self, venv: Path, work: Path) -> None:
        self.python = str(venv / "bin" / "python")
        self.work = work
        self.declared: list[str] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k != "PYTHONPATH" and not k.startswith("TOY_")}
        env.update(extra)
        return env

    def run(self, code: str, **env: str) -> Any:
        """Run ``code`` in the venv's python; it prints one JSON document last."""
        proc = subprocess.run([self.python, "-c", textwrap.dedent(code)], cwd=self.work,
                              capture_output=True, text=True, timeout=600, env=self.env(**env))
        assert proc.returncode == 0, proc.stderr[-4000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def mlem(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """The ``mlem`` command line, run by the venv's python."""
        return subprocess.run([self.python, "-m", "mlem_lib.cli", *args], cwd=self.work,
                              capture_output=True, text=True, timeout=600, env=self.env(**env))

    def declare(self, name: str) -> str:
        """A ``type: toy`` declaration on a free port; removed at the end of the module."""
        folder = self.work / "deployments"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"type": "toy", "port": free_port(),
                                        "wait_timeout": 120}))
        self.declared.append(str(path))
        return str(path)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    root = tmp_path_factory.mktemp("plugin")
    venv = root / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True,
                   capture_output=True, timeout=300)
    site = Path(subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
         "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    # this project's environment (mlem_lib, prefect...) under the venv's own packages
    ours = sysconfig.get_paths()["purelib"]
    (site / "_project_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    source = root / "src"
    shutil.copytree(PLUGIN_SOURCE, source)  # the build writes next to its sources
    proc = subprocess.run([*uv_command(), "pip", "install", "-q", "--no-deps",
                           "--no-build-isolation", "--python", str(venv / "bin" / "python"),
                           str(source)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    work = root / "work"
    work.mkdir()
    env = PluginEnv(venv, work)
    yield env
    for declaration in reversed(env.declared):
        gone = env.mlem("deployment", "remove", declaration)
        if gone.returncode:
            print(f"could not remove {declaration}: {gone.stderr}", file=sys.stderr)


@pytest.fixture(scope="module")
def saved_toy(plugin: PluginEnv) -> dict[str, Any]:
    """``models/toy``: a Scaler(2) saved with a readings sample (in kelvin)."""
    return plugin.run("""
        import json
        import mlem_lib.api as mlem
        from mlem_toy import Scaler
        from mlem_toy.data import Readings

        meta = mlem.save(Scaler(2.0), "models/toy", sample_data=Readings([1.0, 2.0], "K"))
        print(json.dumps({**meta.model_dump(mode="json"), "model_hash": meta.model_hash}))
    """)


def test_this_process_does_not_know_the_plugin():
    from mlem_lib import plugins

    assert "toy" not in plugins.names("targets")
    assert "readings" not in plugins.names("data")


def test_the_plugin_through_the_api(plugin, saved_toy):
    signature = saved_toy["model_type"]["methods"]["predict"]
    assert saved_toy["model_type"]["type"] == "toy"
    assert saved_toy["artifacts"]["data"]["uri"]  # one artifact: the toy JSON
    assert signature["args"][0]["type_"] == {"type": "readings", "unit": "K"}
    assert signature["returns"] == {"type": "readings", "unit": "K"}
    assert any(r.get("module") == "mlem_toy" or "mlem-toy-plugin" in json.dumps(r)
               for r in saved_toy["requirements"])

    declaration = plugin.declare("api-toy")
    out = plugin.run(f"""
        import json
        import httpx
        import mlem_lib.api as mlem
        from mlem_lib import plugins
        from mlem_lib.errors import CredentialsError
        from mlem_toy.data import Readings

        found = {{g: plugins.find(g, n).source for g, n in (
            ("models", "toy"), ("data", "readings"), ("builders", "toy-card"),
            ("targets", "toy"))}}
        model = mlem.load("models/toy")
        answer = model.predict(Readings([1.5], "K"))
        card = mlem.build("models/toy", "toy-card", {{"target": "api-card", "title": "API"}})
        errors = []
        for bad in (None, {{"account": "acme", "token": "wrong"}}, {{"acount": "acme"}}):
            try:
                mlem.deploy({declaration!r}, "models/toy", credentials=bad, progress=False)
            except CredentialsError as exc:
                errors.append(str(exc))
        state = mlem.deploy({declaration!r}, "models/toy", credentials={CREDENTIALS!r},
                            progress=False)
        served = httpx.post(state.url + "/predict", json={{"data": [1, 2.5]}},
                            trust_env=False, timeout=30).json()
        status = mlem.status({declaration!r}, credentials={CREDENTIALS!r})
        mlem.remove({declaration!r}, progress=False)
        print(json.dumps({{
            "found": found, "answer": [answer.values, answer.unit], "card": card.path,
            "card_text": open(card.path).read(), "errors": errors, "type": state.type,
            "account": state.target["account"], "served": served,
            "status": [status.type, status.healthy, status.model_hash],
            "after": mlem.status({declaration!r}).deployed}}))
    """)
    assert set(out["found"].values()) == {"entry point of mlem-toy-plugin"}, out["found"]
    assert out["answer"] == [[3.0], "K"]
    assert out["card_text"].splitlines() == [
        "API", "framework: toy", "methods: predict", f"hash: {saved_toy['model_hash']}"]
    assert "needs an account and a token" in out["errors"][0]
    assert "wrong token" in out["errors"][1]
    assert "field 'acount'" in out["errors"][2] and "fields: account, token" in out["errors"][2]
    assert "secret-of-acme" not in json.dumps(out["errors"])
    assert (out["type"], out["account"], out["served"]) == ("toy", "acme", [2.0, 5.0])
    assert out["status"] == ["toy", True, saved_toy["model_hash"]]
    assert out["after"] is False
    state_text = Path(declaration).with_suffix(".state.json")
    assert not state_text.exists() or "secret-of-acme" not in state_text.read_text()


def test_the_plugin_through_the_cli(plugin, saved_toy):
    built = plugin.mlem("build", "models/toy", "toy-card", "-o", "target=cli-card")
    assert built.returncode == 0, built.stderr
    assert f"hash: {saved_toy['model_hash']}" in (plugin.work / "cli-card" / "card.txt").read_text()
    unknown = plugin.mlem("build", "models/toy", "toy-card", "-o", "colour=red")
    assert unknown.returncode != 0
    assert unknown.stderr.strip().count("\n") == 0 and "colour" in unknown.stderr

    declaration = plugin.declare("cli-toy")
    refused = plugin.mlem("deployment", "run", declaration, "-m", "models/toy")
    assert refused.returncode != 0
    assert "needs an account and a token" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    run = plugin.mlem("deployment", "run", declaration, "-m", "models/toy", **CREDENTIALS_ENV)
    assert run.returncode == 0, run.stderr
    status = plugin.mlem("deployment", "status", declaration)
    assert status.returncode == 0, status.stderr
    assert saved_toy["model_hash"][:12] in status.stdout and "toy" in status.stdout
    removed = plugin.mlem("deployment", "remove", declaration)
    assert removed.returncode == 0, removed.stderr


@pytest.mark.usefixtures("prefect_harness")
def test_the_plugin_through_the_tasks_and_the_rollout_flow(plugin, saved_toy):
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    assert api_url, "the Prefect harness gives an API URL"
    declaration = plugin.declare("flow-toy")
    out = plugin.run(f"""
        import json
        import httpx
        from prefect import flow
        from mlem_lib.prefect.flows.params import PackageRequest, RolloutRequest
        from mlem_lib.prefect.flows.rollout_model import rollout_model
        from mlem_lib.prefect.tasks.build import build_model
        from mlem_lib.prefect.tasks.deploy import (
            deploy_model, deployment_status, remove_deployment, rollback_deployment)
        from mlem_lib.prefect.tasks.models import save_model
        from mlem_toy import Scaler
        from mlem_toy.blocks import ToyCredentialsBlock
        from mlem_toy.data import Readings

        ToyCredentialsBlock(account="acme", token="secret-of-acme").save("dev", overwrite=True)
        decl = {declaration!r}

        def served():
            url = deployment_status(decl).url
            return httpx.post(url + "/predict", json={{"data": [1, 2]}}, trust_env=False,
                              timeout=30).json()

        @flow
        def through_tasks():
            meta = save_model(Scaler(3.0), "models/toy3", sample_data=Readings([1.0]))
            card = build_model("models/toy3", "toy-card", {{"target": "task-card"}})
            return meta.model_hash, card.model_hash

        saved3, carded3 = through_tasks()
        first = rollout_model(RolloutRequest(
            model="models/toy", declaration=decl, credentials="toy-credentials/dev",
            package=PackageRequest(model="models/toy", pip=False,
                                   builds={{"toy-card": {{"target": "flow-card"}}}})))
        by_flow = served()

        @flow
        def update_and_back():
            block = ToyCredentialsBlock.load("dev")
            new = deploy_model(decl, "models/toy3", block)
            answer = served()
            back = rollback_deployment(decl, "toy-credentials/dev")
            return new.model_hash, new.target["account"], answer, back.model_hash

        new_hash, account, by_task, back_hash = update_and_back()
        back_answer = served()
        remove_deployment(decl)
        print(json.dumps({{
            "saved3": saved3, "carded3": carded3, "flow": first.model_dump(mode="json"),
            "by_flow": by_flow, "new": [new_hash, account, by_task],
            "back": [back_hash, back_answer],
            "card": open("flow-card/card.txt").read(),
            "after": deployment_status(decl).deployed}}))
    """, PREFECT_API_URL=api_url)
    assert out["saved3"] == out["carded3"]
    assert out["flow"]["model_hash"] == saved_toy["model_hash"]
    assert out["by_flow"] == [2.0, 4.0]
    assert f"hash: {saved_toy['model_hash']}" in out["card"]
    assert out["new"] == [out["saved3"], "acme", [3.0, 6.0]]
    assert out["back"] == [saved_toy["model_hash"], [2.0, 4.0]]
    assert out["after"] is False
