"""Save atomicity, step by step: a save stopped dead between any two of its steps leaves a
model that loads (the old version or the new one, never a mix), and the next save works.

The stop is deterministic: ``mlem_lib.storage.save_step`` (a failpoint hook) ends the
saving process with ``os._exit`` right after the named step, as ``kill -9`` would at
that instant (no ``finally`` runs, no cleanup). The two versions answer differently on
one row of each class, so the test knows which one loaded.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SAVE = textwrap.dedent("""
    import os, sys
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    import mlem_lib.api as mlem
    import mlem_lib.storage as storage

    path, shift, stop_after = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, (y + shift) % 3)
    if stop_after != "-":
        def stop(step):
            if step == stop_after:
                os._exit(17)  # dead at this instant: no cleanup, like kill -9
        storage.save_step = stop
    mlem.save(model, path, sample_data=X)
""")
STEPS = [("artifacts-written", 0), ("pending-written", 0), ("artifact-moved", 1),
         ("metadata-moved", 1)]  # the step a save dies after -> the version that loads


def _save_stopped(path: Path, shift: int, stop_after: str) -> int:
    """Save version ``shift`` in another process that dies right after ``stop_after``."""
    return subprocess.run([sys.executable, "-c", SAVE, str(path), str(shift), stop_after],
                          cwd=REPO_ROOT, timeout=300).returncode


def _save(path: Path, shift: int) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import mlem_lib.api as mlem

    X, y = load_iris(return_X_y=True, as_frame=True)
    mlem.save(LogisticRegression(max_iter=500).fit(X, (y + shift) % 3), str(path),
              sample_data=X)


def _version(path: Path) -> int:
    """Which version loads: 0 predicts [0, 1, 2] on rows 0/50/100, 1 predicts [1, 2, 0]."""
    from sklearn.datasets import load_iris

    import mlem_lib.api as mlem

    X, _ = load_iris(return_X_y=True, as_frame=True)
    answer = mlem.load(str(path)).predict(X.iloc[[0, 50, 100]]).tolist()
    return {(0, 1, 2): 0, (1, 2, 0): 1, (2, 0, 1): 2}[tuple(answer)]


@pytest.mark.parametrize(("step", "loads"), STEPS)
def test_a_save_stopped_after_each_step_leaves_a_whole_model(tmp_path, step, loads):
    model = tmp_path / "iris"
    _save(model, 0)
    assert _version(model) == 0
    assert _save_stopped(model, 1, step) == 17, "the failpoint never fired"
    assert _version(model) == loads  # never an ArtifactIntegrityError
    _save(model, 2)  # the next writer finishes or discards the stopped save
    assert _version(model) == 2
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["iris", "iris.mlem"], leftovers
