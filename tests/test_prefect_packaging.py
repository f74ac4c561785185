"""What the wheel installs: one import name, ``mlem_lib`` (the Prefect layer inside it), and
the entry point that tells Prefect about our blocks."""

from __future__ import annotations

import configparser
import subprocess
import zipfile
from pathlib import Path

from tests.conftest import REPO_ROOT, uv_command


def test_the_wheel_installs_only_mlem_lib(tmp_path: Path):
    """No top-level ``tasks`` or ``flows``: they would shadow, or be shadowed by, a user
    project's own packages of the same name."""
    done = subprocess.run([*uv_command(), "build", "--wheel", "--out-dir", str(tmp_path),
                           str(REPO_ROOT)], capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top = {name.split("/")[0] for name in names}
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(info).decode())
    assert {name for name in top if not name.endswith(".dist-info")} == {"mlem_lib"}
    assert "mlem_lib/prefect/flows/rollout_model.py" in names
    assert "mlem_lib/prefect/tasks/deploy.py" in names
    assert dict(entry_points["prefect.collections"]) == {"mlem_lib": "mlem_lib.prefect.blocks"}
