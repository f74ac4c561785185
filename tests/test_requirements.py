"""Requirement inference from the pickled object graph."""

from __future__ import annotations

import io
import pickle

import cloudpickle

from mlem_lib import requirements
from mlem_lib.meta import CustomRequirement, PythonRequirement
from tests.helpers.localmodels import Scaler


def test_pickled_modules_from_sklearn_model(iris_rf):
    modules = requirements.pickled_modules(io.BytesIO(pickle.dumps(iris_rf)))
    assert "sklearn.ensemble._forest" in modules
    tops = {m.split(".")[0] for m in modules}
    assert {"sklearn", "numpy"} <= tops
    assert "pandas" not in tops


def test_cloudpickled_function_module_references():
    import numpy as np

    def f(x):
        return np.asarray(x) * 2

    modules = requirements.pickled_modules(io.BytesIO(cloudpickle.dumps(f)))
    assert {"numpy", "cloudpickle"} <= {m.split(".")[0] for m in modules}


def test_resolve_maps_to_distributions_and_drops_stdlib():
    reqs = requirements.resolve(["sklearn", "json", "os", "yaml"])
    by_module = {r.module: r for r in reqs if isinstance(r, PythonRequirement)}
    assert set(by_module) == {"sklearn", "yaml"}
    assert by_module["sklearn"].package_name == "scikit-learn"
    assert by_module["yaml"].package_name == "PyYAML"
    assert by_module["sklearn"].pip_line().startswith("scikit-learn==")


def test_local_module_becomes_custom_requirement_with_its_imports():
    modules = requirements.pickled_modules(io.BytesIO(pickle.dumps(Scaler(1.0))))
    reqs = requirements.resolve(modules)
    custom = [r for r in reqs if isinstance(r, CustomRequirement)]
    assert [c.name for c in custom] == ["tests"]
    assert custom[0].is_package
    # exactly the module used and its packages, not the whole tests tree
    assert sorted(requirements.custom_sources(custom[0])) == [
        "tests/__init__.py", "tests/helpers/__init__.py", "tests/helpers/localmodels.py"]
    assert "numpy" in {r.module for r in reqs if isinstance(r, PythonRequirement)}


def test_single_local_module_uses_mlem_encoding(tmp_path, monkeypatch):
    import base64
    import zlib

    (tmp_path / "solo_mod_xyz.py").write_text("import yaml\nVALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reqs = requirements.resolve(["solo_mod_xyz"])
    custom = next(r for r in reqs if isinstance(r, CustomRequirement))
    assert not custom.is_package
    assert zlib.decompress(base64.b64decode(custom.source64zip)) == b"import yaml\nVALUE = 1\n"
    assert "yaml" in {r.module for r in reqs if isinstance(r, PythonRequirement)}


def test_check_installed_reports_major_minor_differences():
    import warnings

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        problems = requirements.check_installed([
            PythonRequirement(module="yaml", package_name="PyYAML", version="0.0.1"),
            PythonRequirement(module="no_such_module_xyz", version="1.0"),
        ])
    assert any("PyYAML" in p for p in problems)
    assert any("not installed" in p for p in problems)
