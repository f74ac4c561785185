"""Fixtures for the MLEM migration tests (loaded by conftest.py): a copy of the MLEM
project in tests/fixtures/mlem/project/ (made by real MLEM 0.4.14) and the CLI run
in-process."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

MLEM_PROJECT = REPO_ROOT / "tests" / "fixtures" / "mlem" / "project"


@pytest.fixture
def mlem_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the MLEM project, as the current directory (MLEM's paths are relative)."""
    root = tmp_path / "project"
    shutil.copytree(MLEM_PROJECT, root)
    monkeypatch.chdir(root)
    return root


@pytest.fixture(scope="session")
def mlem_objects() -> dict[str, Any]:
    """What real MLEM made of the project's files (tests/fixtures/mlem/project/OBJECTS.json)."""
    data: dict[str, Any] = json.loads((MLEM_PROJECT / "OBJECTS.json").read_text())
    return data


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``mlem ARGS...`` in this process; returns the exit code, stdout and stderr."""
    from mlem_lib.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
