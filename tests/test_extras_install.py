"""The built wheel in fresh venvs: the core alone, then with each extra.

Each venv gets the wheel (plus one extra) pinned to uv.lock's versions, from uv's
cache. tests/helpers/extras_probe.py then runs inside it: the core (save, load, apply,
show, serve over HTTP) must work everywhere; every other feature must work when its
extra is installed and otherwise fail with :class:`MissingExtraError` naming that
extra. The CLI says it in one line.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from mlem_lib.extras import EXTRAS
from tests.conftest import REPO_ROOT, uv_command

pytestmark = pytest.mark.slow

PROBE = REPO_ROOT / "tests" / "helpers" / "extras_probe.py"
SAMPLE = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
FRAMEWORKS = ("sklearn", "xgboost", "lightgbm")
# a probed feature -> the extras it needs, in the order they are checked
NEEDS = {"prefect": ["prefect"], "registry": ["registry"], "docker": ["docker"],
         "aws": ["aws"], "dask": ["prefect", "dask"],
         **{name: [name] for name in FRAMEWORKS}}
# torch and transformers are CUDA builds on PyPI (tests/test_torch_* use the CPU wheel);
# keras needs a backend of the user's choice
NOT_IN_ALL = {"all", "frameworks", "torch", "transformers", "keras"}


def _pyproject_extras() -> dict[str, list[str]]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return dict(project["optional-dependencies"])


def _installed_by(extra: str) -> set[str]:
    """The extras an install of ``extra`` names (``all`` names the others); their
    dependencies may bring more (Prefect depends on docker)."""
    if extra == "none":
        return set()
    extras = _pyproject_extras()
    found = {extra}
    for req in extras[extra]:
        if req.startswith("mlem-lib["):
            found |= set(req[len("mlem-lib["):req.index("]")].split(","))
    return found


def test_every_extra_is_known_to_mlem_lib_and_all_holds_them():
    declared = set(_pyproject_extras())
    assert set(EXTRAS) <= declared, set(EXTRAS) - declared
    assert _installed_by("all") == declared - NOT_IN_ALL | {"all"}


@pytest.fixture(scope="session")
def wheel_and_constraints(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([*uv_command(), "build", "--wheel", "--out-dir", str(out), str(REPO_ROOT)],
                   check=True, capture_output=True, timeout=600)
    constraints = out / "constraints.txt"
    heavy = [f"--no-extra={e}" for e in NOT_IN_ALL - {"all", "frameworks"}
             if e in _pyproject_extras()]
    subprocess.run([*uv_command(), "export", "--frozen", "--all-extras", "--no-dev",
                    "--no-emit-project", "--no-hashes", *heavy, "-o", str(constraints)],
                   cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("*.whl")
    return wheel, constraints


@pytest.fixture(scope="session")
def framework_models(tmp_path_factory) -> dict[str, str]:
    """An iris model of each framework, saved here (where all are installed)."""
    import lightgbm
    import numpy as np
    import xgboost
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import mlem_lib.api as mlem

    X, y = load_iris(return_X_y=True)
    folder = tmp_path_factory.mktemp("framework-models")
    models = {
        "sklearn": LogisticRegression(max_iter=300).fit(X, y),
        "xgboost": xgboost.train({"objective": "multi:softmax", "num_class": 3},
                                 xgboost.DMatrix(X, label=y), num_boost_round=3),
        "lightgbm": lightgbm.train({"objective": "multiclass", "num_class": 3,
                                    "verbose": -1}, lightgbm.Dataset(X, label=y),
                                   num_boost_round=3),
    }
    paths = {}
    for name, model in models.items():
        paths[name] = str(folder / name)
        mlem.save(model, paths[name], sample_data=np.asarray(SAMPLE))
    return paths


CASES = ["none", *(e for e in EXTRAS if e not in NOT_IN_ALL), "all"]


@pytest.mark.parametrize("extra", CASES)
def test_the_wheel_with_one_extra(extra, tmp_path, wheel_and_constraints, framework_models):
    wheel, constraints = wheel_and_constraints
    venv = tmp_path / "venv"
    subprocess.run([*uv_command(), "venv", "--quiet", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    target = str(wheel) if extra == "none" else f"mlem-lib[{extra}] @ {wheel.as_uri()}"
    done = subprocess.run([*uv_command(), "pip", "install", "--quiet", "--python", str(python),
                           "-c", str(constraints), target], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr

    work = tmp_path / "work"
    work.mkdir()
    config = tmp_path / "probe.json"
    config.write_text(json.dumps({"work": str(work), "sample": SAMPLE,
                                  "models": framework_models}))
    probe = subprocess.run([str(python), str(PROBE), str(config)], capture_output=True,
                           text=True, timeout=600, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    results = json.loads(probe.stdout.splitlines()[-1])

    assert results.pop("core") == "ok"
    installed = set(results.pop("available"))
    if extra == "none":
        assert installed == set(), f"the core pulls in {installed}"
    assert _installed_by(extra) & set(EXTRAS) <= installed
    for feature, outcome in results.items():
        missing = [e for e in NEEDS[feature] if e not in installed]
        if not missing:
            assert outcome == "ok", f"{feature} with {sorted(installed)}: {outcome}"
        else:
            assert outcome.startswith(f"missing {missing[0]}: "), (feature, outcome)
            assert f"pip install 'mlem-lib[{missing[0]}]'" in outcome

    # the same on the command line: one line, exit 1
    mlem = str(venv / "bin" / "mlem")
    sagemaker = tmp_path / "sagemaker.yaml"
    sagemaker.write_text("type: sagemaker\nname: probe\nregion: eu-west-1\n")
    cli = {"registry": [mlem, "registry", "show", "--repo", str(work)],
           "docker": [mlem, "build", str(work / "total"), "docker", "--image", "t:1"],
           "aws": [mlem, "deployment", "run", str(sagemaker), "--model", str(work / "total")],
           "sklearn": [mlem, "apply", framework_models["sklearn"], str(work / "in.npy")]}
    for feature, argv in cli.items():
        if not results[feature].startswith(f"missing {feature}"):
            continue
        run = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                             env={"PATH": str(venv / "bin"), "HOME": str(tmp_path),
                                  "DOCKER_HOST": "unix:///nonexistent.sock"})
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 1 and len(lines) == 1, (feature, run.stderr)
        assert lines[0].startswith("error: ") and \
            f"pip install 'mlem-lib[{feature}]'" in lines[0], lines[0]
