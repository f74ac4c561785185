"""The ``mlem`` command line: show, help, and one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

MLEM = [sys.executable, "-m", "mlem_lib.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLEM, *args], capture_output=True, text=True, timeout=120)


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    assert "show" in out.stdout and "examples:" in out.stdout


def test_show_prints_tables(saved_lr):
    out = run("show", saved_lr)
    assert out.returncode == 0, out.stderr
    assert "sklearn" in out.stdout
    assert "predict_proba" in out.stdout
    assert "scikit-learn" in out.stdout
    assert "sha256:" in out.stdout
    js = run("show", saved_lr, "--json")
    assert '"object_type": "model"' in js.stdout


def test_missing_model_is_one_line_nonzero(tmp_path):
    out = run("show", str(tmp_path / "nothing"))
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: no model or data at")
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_tampered_model_is_one_line_nonzero(tmp_path, saved_lr):
    shutil.copy(saved_lr, tmp_path / "lr")
    shutil.copy(saved_lr + ".mlem", tmp_path / "lr.mlem")
    Path(tmp_path / "lr").write_bytes(b"x" + Path(tmp_path / "lr").read_bytes()[1:])
    code = f"import mlem_lib.api as m; m.load({str(tmp_path / 'lr')!r})"
    direct = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "ArtifactIntegrityError" in direct.stderr
    meta_text = Path(tmp_path / "lr.mlem").read_text()
    Path(tmp_path / "lr.mlem").write_text(meta_text + "\n  : : bad yaml [\n")
    out = run("show", str(tmp_path / "lr"))
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr
