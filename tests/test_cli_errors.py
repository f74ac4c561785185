"""One-line CLI errors everywhere (issue 12, item 16)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

MLEM = [sys.executable, "-m", "mlem_lib.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLEM, *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT)


@pytest.mark.parametrize("where", ["first", "after-command", "last"])
def test_traceback_flag_is_accepted_anywhere(tmp_path, where):
    missing = str(tmp_path / "nothing")
    argv = {"first": ["--traceback", "show", missing],
            "after-command": ["show", "--traceback", missing],
            "last": ["show", missing, "--traceback"]}[where]
    out = run(*argv)
    assert out.returncode != 0
    assert "Traceback" in out.stderr and "ObjectNotFoundError" in out.stderr
    assert "unrecognized arguments" not in out.stderr


def test_without_traceback_flag_errors_are_one_line(tmp_path):
    out = run("show", str(tmp_path / "nothing"))
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1


def test_show_into_a_closed_pipe_ends_quietly(saved_lr):
    """``mlem show X | head``: the reader goes away before we write."""
    proc = subprocess.Popen([*MLEM, "show", saved_lr], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO_ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `head` exiting before mlem writes
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert err == ""
    assert code == 141


def test_show_piped_into_head(saved_lr):
    out = subprocess.run(f"{sys.executable} -m mlem_lib.cli show {saved_lr} --json | head -1",
                         shell=True, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert out.stdout.strip() == "{"
    assert "Traceback" not in out.stderr
