"""Local code shipped inside a ``.mlem`` file is loaded from memory, never from a shared
folder another user could plant files in (issue 12, item 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

MODULE = "plant_mod_h12"

SAVE = f"""
import sys
sys.path.insert(0, sys.argv[1])
import mlem_lib.api as mlem, {MODULE}
meta = mlem.save({MODULE}.Doubler(), sys.argv[2], sample_data=[1, 2])
print(meta.model_hash)
"""

LOAD = """
import sys
import mlem_lib.api as mlem
print(mlem.apply(sys.argv[1], [5, 6]))
"""


def _run(code: str, *args: str, env: dict[str, str], cwd: Path) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=env, cwd=cwd, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def shipped_model(tmp_path: Path) -> tuple[str, str, dict[str, str]]:
    """A model whose class lives in a local module that is deleted after the save.

    Returns (model path, model hash, environment whose TMPDIR is private to the test).
    """
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{MODULE}.py").write_text(textwrap.dedent("""
        class Doubler:
            def predict(self, xs):
                return [x * 2 for x in xs]
    """))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(REPO_ROOT)}
    model = str(tmp_path / "model")
    digest = _run(SAVE, str(src), model, env=env, cwd=tmp_path)
    (src / f"{MODULE}.py").unlink()
    return model, digest, env


def _old_shared_dirs(tmp: str, digest: str) -> list[Path]:
    # where earlier versions unpacked shipped code: <tmp>/mlem_lib_custom/<hash[:16]>
    return [Path(tmp) / "mlem_lib_custom" / digest[:16]]


def test_planted_package_in_shared_temp_folder_does_not_run(shipped_model, tmp_path):
    model, digest, env = shipped_model
    marker = tmp_path / "pwned"
    for folder in _old_shared_dirs(env["TMPDIR"], digest):
        planted = folder / MODULE
        planted.mkdir(parents=True)
        (planted / "__init__.py").write_text(textwrap.dedent(f"""
            open({str(marker)!r}, "w").write("ran")
            class Doubler:
                def predict(self, xs):
                    return ["pwned" for x in xs]
        """))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    assert _run(LOAD, model, env=env, cwd=elsewhere) == "[10, 12]"
    assert not marker.exists(), "planted code ran during load"


def test_symlink_planted_in_shared_temp_folder_is_not_written_through(shipped_model, tmp_path):
    model, digest, env = shipped_model
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for folder in _old_shared_dirs(env["TMPDIR"], digest):
        folder.mkdir(parents=True)
        (folder / f"{MODULE}.py").symlink_to(victim)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    assert _run(LOAD, model, env=env, cwd=elsewhere) == "[10, 12]"
    assert victim.read_text() == "precious"


def test_load_writes_nothing_to_the_temp_folder(shipped_model, tmp_path):
    model, _, env = shipped_model
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    _run(LOAD, model, env=env, cwd=elsewhere)
    assert list(Path(env["TMPDIR"]).iterdir()) == []


def test_shipped_code_is_not_shadowed_by_a_same_named_module_on_sys_path(shipped_model,
                                                                         tmp_path):
    """A different ``plant_mod_h12.py`` in the working directory (first on sys.path of
    ``python -c``) must not replace the code the model was saved with."""
    model, _, env = shipped_model
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / f"{MODULE}.py").write_text(textwrap.dedent("""
        class Doubler:
            def predict(self, xs):
                return ["shadowed" for x in xs]
    """))
    assert _run(LOAD, model, env=env, cwd=cwd) == "[10, 12]"


def test_shipped_code_does_not_replace_modules_already_imported(tmp_path):
    """Loading in the process that saved keeps the live module (same class objects)."""
    import numpy as np

    import mlem_lib.api as mlem
    from tests.helpers.localmodels import Scaler

    before = set(sys.path)  # other tests in this process (Dask) may have added temp dirs
    mlem.save(Scaler(3.0), str(tmp_path / "s"), sample_data=np.ones((1, 2)))
    loaded = mlem.load(str(tmp_path / "s"))
    assert type(loaded) is Scaler
    assert not [p for p in set(sys.path) - before if p.startswith(tempfile.gettempdir())]


def test_shipped_module_that_reads_its_file_path_at_import_loads(tmp_path):
    """Modules often compute paths from ``__file__`` when imported; code served from
    memory gets a virtual ``__file__`` instead of failing with NameError."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "pathy_mod_h12.py").write_text(textwrap.dedent("""
        from pathlib import Path
        HERE = Path(__file__).parent
        def triple(xs):
            return [x * 3 for x in xs]
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    model = str(tmp_path / "model")
    save = ("import sys; sys.path.insert(0, sys.argv[1]); import mlem_lib.api as mlem, "
            "pathy_mod_h12; mlem.save(pathy_mod_h12.triple, sys.argv[2], sample_data=[1])")
    _run(save, str(src), model, env=env, cwd=tmp_path)
    (src / "pathy_mod_h12.py").unlink()
    assert _run(LOAD, model, env=env, cwd=tmp_path) == "[15, 18]"
