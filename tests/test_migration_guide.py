"""The README's "Coming from MLEM" guide, step by step, in a project made by MLEM 0.4.14:
every command line of the guide's block runs with the exit code the guide gives, and every
mlem_lib call its table names exists."""

from __future__ import annotations

import re
import shlex

import yaml

import mlem_lib.api as mlem
from tests.conftest import REPO_ROOT


def _guide_lines() -> list[tuple[list[str], str]]:
    text = (REPO_ROOT / "README.md").read_text()
    block = text.split("<!-- migration-guide:start -->")[1].split("<!-- migration-guide:end -->")[0]
    steps = []
    for line in block.splitlines():
        if not line.startswith("mlem "):
            continue
        argv = shlex.split(line, comments=True)
        steps.append((argv[1:], line.partition("#")[2]))
    return steps


def test_the_guide_has_its_steps():
    steps = _guide_lines()
    assert len(steps) >= 10
    assert {argv[0] for argv, _ in steps} >= {"ls", "checkenv", "pprint", "apply", "build",
                                              "link", "declare", "import"}


def test_every_step_of_the_migration_guide_runs(mlem_project, mlem_objects, cli):
    for argv, comment in _guide_lines():
        result = cli(*argv)
        expected = 1 if "exit 1" in comment else 0
        assert result.code == expected, (argv, result.err)
        if expected == 1:
            assert result.err.strip().count("\n") <= 10, result.err  # a short explanation
    # what the steps left behind
    expected = [str(v) for v in mlem_objects["expected_predict"]]  # what MLEM predicted
    assert [str(v) for v in mlem.load("prediction").tolist()] == expected
    assert (mlem_project / "predictions.csv").read_text().split()[1:] == expected
    assert list((mlem_project / "build/pip").glob("*.whl"))
    assert list((mlem_project / "build/rf").glob("iris_rf-*.whl"))
    assert yaml.safe_load((mlem_project / "prod_rf.mlem").read_text())["object_type"] == "link"
    assert yaml.safe_load((mlem_project / "production.mlem").read_text())["type"] == "heroku"
    assert mlem.load("data/imported").shape == (4, 4)


def test_every_call_the_guide_maps_to_exists():
    text = (REPO_ROOT / "README.md").read_text().split("### Coming from MLEM")[1]
    names = set(re.findall(r"mlem_lib\.api\.(\w+)\(", text))
    names |= {"status", "remove", "rollback", "load_meta"}
    assert names >= {"save", "load", "apply", "apply_remote", "serve", "build", "deploy"}
    missing = [n for n in sorted(names) if not callable(getattr(mlem, n, None))]
    assert missing == []


def test_a_mlem_project_builds_serves_and_rolls_out_to_heroku_with_mlems_command_lines(
        mlem_project, cli, heroku_double, docker_registry, docker_base_image):
    """MLEM's own command lines on the project MLEM 0.4.14 wrote: its builder file, its
    link, and its heroku deployment + env (the API key is in the env file, as MLEM kept
    it), rolled out to the Heroku double, then status, a call and remove."""
    import httpx
    import pandas as pd

    # the declaration as MLEM wrote it, pointed at the double (a private endpoint)
    decl = yaml.safe_load((mlem_project / "heroku_app.mlem").read_text())
    decl.update(api_url=heroku_double.url, registry=docker_registry[0],
                registry_user=docker_registry[1], base=docker_base_image,
                wait_timeout=120, poll_interval=0.3)
    (mlem_project / "heroku_app.mlem").write_text(yaml.safe_dump(decl))

    built = cli("build", "--load", "build_pip.mlem", "-m", "links/rf_link")
    assert built.code == 0, built.err
    run = cli("deployment", "run", "heroku_app", "-m", "links/rf_link")
    assert run.code == 0, run.err
    app = decl["app_name"]
    assert app in heroku_double.apps
    status = cli("deployment", "status", "heroku_app")
    assert status.code == 0 and "healthy" in (status.out + status.err).lower(), status
    url = heroku_double.apps[app]["web_url"]
    rows = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4,
             "petal_width": 0.2}]
    answer = httpx.post(f"{url.rstrip('/')}/predict", json={"data": {"values": rows}},
                        timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json() == mlem.apply("models/rf", pd.DataFrame(rows)).tolist()
    removed = cli("deployment", "remove", "heroku_app")
    assert removed.code == 0, removed.err
    assert app not in heroku_double.apps
