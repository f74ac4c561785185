"""scripts/check_imports.py: mlem_lib's import graph has no cycle and no Prefect in the core."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "check_imports.py"


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root)],
                          capture_output=True, text=True, timeout=60)


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "mlem_lib" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_mlem_lib_has_no_cycle_and_no_prefect_in_the_core():
    result = _run(REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert "no import cycle" in result.stdout


def test_a_lazy_import_cycle_is_found_with_its_lines(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "api.py": "def deploy():\n    from mlem_lib.deploy import run\n    return run()\n",
        "deploy/__init__.py": "from mlem_lib.deploy.target import run\n",
        "deploy/target.py": "def run():\n    import mlem_lib.api as mlem\n    return mlem\n",
    })
    result = _run(root)
    assert result.returncode == 1
    assert "import cycle among 3 modules" in result.stderr
    assert "mlem_lib.api -[line 2]-> mlem_lib.deploy" in result.stderr


def test_type_checking_imports_and_parent_packages_are_not_edges(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "errors.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from mlem_lib.state import State\n"),
        "state.py": "from mlem_lib.errors import Error\n",
        "registry/__init__.py": "from mlem_lib.registry.checkout import materialise\n",
        "registry/checkout.py": "from mlem_lib.registry import git\n",
        "registry/git.py": "",
    })
    result = _run(root)
    assert result.returncode == 0, result.stderr


def test_prefect_in_the_core_is_refused_but_allowed_in_its_layer(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "prefect/__init__.py": "import prefect\nfrom prefect_aws import AwsCredentials\n",
        "deploy.py": "def f():\n    from mlem_lib.prefect import flows\n",
        "api.py": "from prefect import task\n",
    })
    result = _run(root)
    assert result.returncode == 1
    problems = result.stderr.splitlines()
    assert any(p.startswith("mlem_lib/api.py:1: the core imports prefect") for p in problems)
    assert any(p.startswith("mlem_lib/deploy.py:2: the core imports mlem_lib.prefect")
               for p in problems)
    assert not any("mlem_lib/prefect/" in p for p in problems)


TARGET_COUNT = re.compile(r"^\.venv/bin/python -c \"(import ast,pathlib;from mlem_lib import "
                          r"plugins;T=.*)\"$", re.M)


def _count_target_files(cwd: Path) -> subprocess.CompletedProcess[str]:
    match = TARGET_COUNT.search((REPO_ROOT / "README.md").read_text())
    assert match, "the README lost its count of what adding a target touches"
    return subprocess.run([sys.executable, "-c", match.group(1)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_a_target_is_one_module_and_one_registration_line():
    out = _count_target_files(REPO_ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "target heroku: 1 module (mlem_lib.deploy.heroku) + 1 line(s) elsewhere: " \
           "mlem_lib/plugins.py" in out.stdout


def test_the_count_finds_a_flow_that_names_a_target(tmp_path):
    _package(tmp_path, {
        "plugins.py": 'TARGETS = ["mlem_lib.deploy.heroku:HerokuTarget"]\n',
        "deploy/heroku.py": '"""The target; mlem_lib.deploy.heroku in a docstring is fine."""\n',
    })
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "rollout.py").write_text(
        "from mlem_lib.deploy.heroku import HerokuTarget\n")
    out = _count_target_files(tmp_path)
    assert out.returncode == 1
    assert ("target heroku: 1 module (mlem_lib.deploy.heroku) + 2 line(s) elsewhere: "
            "flows/rollout.py mlem_lib/plugins.py") in out.stdout
