"""Local code used by a function defined in a training script is shipped with the model."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle
import pytest

import mlem_lib.api as mlem
from mlem_lib import requirements
from mlem_lib.meta import CustomRequirement


def _script_namespace(tmp_path: Path, monkeypatch, modules: dict[str, str]) -> dict:
    """Write local modules, put their folder on sys.path and return a ``__main__``-like
    namespace: functions defined in it are pickled by value, as a script's are."""
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in modules:
        monkeypatch.delitem(sys.modules, name, raising=False)
    return {"__name__": "__main__"}


def test_module_global_of_a_script_function_is_found(tmp_path, monkeypatch):
    ns = _script_namespace(tmp_path, monkeypatch,
                           {"helpers_a1": "def twice(x):\n    return 2 * x\n"})
    exec(textwrap.dedent("""
        import helpers_a1

        def model(xs):
            return [helpers_a1.twice(x) for x in xs]
    """), ns)
    # the module's name is written first as a key of the function's globals, then
    # referenced from the memo by cloudpickle's subimport("helpers_a1")
    modules = requirements.pickled_modules(io.BytesIO(cloudpickle.dumps(ns["model"])))
    assert "helpers_a1" in modules


def test_local_modules_are_shipped_transitively(tmp_path, monkeypatch):
    ns = _script_namespace(tmp_path, monkeypatch, {
        "helpers_b1": """
            from weights_b1 import WEIGHTS

            def weigh(x):
                return x * WEIGHTS[0]
        """,
        "weights_b1": "WEIGHTS = [3]\n",
        "post_b1": "def finish(xs):\n    return [x + 1 for x in xs]\n",
    })
    exec(textwrap.dedent("""
        import helpers_b1

        def inner(x):
            return helpers_b1.weigh(x)

        class Model:
            def predict(self, xs):
                import post_b1  # imported inside the method: only in the bytecode
                return post_b1.finish([inner(x) for x in xs])
    """), ns)
    meta = mlem.save(ns["Model"](), str(tmp_path / "out" / "m"), sample_data=[1, 2])
    shipped = {r.name for r in meta.requirements if isinstance(r, CustomRequirement)}
    assert shipped == {"helpers_b1", "weights_b1", "post_b1"}
    assert meta.model_type.methods["predict"].returns.describe() == "list[int]"


TRAIN = """
import json
import sys

import numpy as np
import xgboost
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import helpers
import mlem_lib.api as mlem

X, y = load_iris(return_X_y=True)
lr = LogisticRegression(max_iter=500).fit(X, y)
booster = xgboost.XGBClassifier(n_estimators=8, max_depth=2).fit(X, y)
"""
DEFINE = """
def probabilities(data):
    return [lr.predict_proba(data), booster.predict_proba(data)]


def ensemble(data):
    import postproc
    return postproc.labels(helpers.average(probabilities(np.asarray(data))))
"""
SAVE = """
target = sys.argv[1]
mlem.save(ensemble, target, sample_data=X[:5])
with open(target + ".expected.json", "w") as f:
    json.dump(ensemble(X).tolist(), f)
"""
LOCAL_MODULES = {
    "helpers.py": """
        import numpy as np
        from weights import WEIGHTS

        def average(probabilities):
            return np.average(np.stack(probabilities), axis=0, weights=WEIGHTS)
    """,
    "weights.py": "WEIGHTS = [0.25, 0.75]\n",
    "postproc.py": """
        import numpy as np

        def labels(probabilities):
            return np.argmax(probabilities, axis=1)
    """,
}
NOTEBOOK = """
import __main__
import sys
vars(__main__).pop("__file__", None)
cells = {cells!r}
for number, cell in enumerate(cells, 1):
    exec(compile(cell, f"/tmp/ipykernel_4242/{{number}}.py", "exec"), vars(__main__))
"""
LOAD = """
import json, sys
import mlem_lib.api as mlem
from sklearn.datasets import load_iris
X, _ = load_iris(return_X_y=True)
model = mlem.load(sys.argv[1])
print(json.dumps(model(X).tolist()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("style", ["script", "notebook"])
def test_function_averaging_frameworks_with_a_local_helper_loads_elsewhere(tmp_path, style):
    """The launch post's example: a function averaging scikit-learn and xgboost."""
    project = tmp_path / "project"
    project.mkdir()
    for name, source in LOCAL_MODULES.items():
        (project / name).write_text(textwrap.dedent(source))
    target = str(tmp_path / "models" / "ensemble")
    if style == "script":
        (project / "train.py").write_text(TRAIN + DEFINE + SAVE)
        argv = [sys.executable, "train.py", target]
    else:  # a notebook's kernel: __main__ has no file, cells run one by one
        argv = [sys.executable, "-c", NOTEBOOK.format(cells=[TRAIN, DEFINE, SAVE]), target]
    subprocess.run(argv, cwd=project, check=True, capture_output=True, text=True)

    meta = mlem.load_meta(target)
    installable = {r.module for r in meta.python_requirements()}
    assert {"sklearn", "xgboost", "numpy", "cloudpickle"} <= installable
    assert {r.name for r in meta.custom_requirements()} == {"helpers", "weights", "postproc"}

    expected = json.loads(Path(target + ".expected.json").read_text())
    shutil.rmtree(project)  # the local modules exist nowhere but in the .mlem file now
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, "-c", LOAD, target], cwd=elsewhere,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == expected
