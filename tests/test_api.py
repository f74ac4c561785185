"""The public API module: cheap to import, and the documented verbs exist."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["prefect", "fastapi", "dvc", "boto3", "docker", "pandas", "sklearn", "uvicorn"]


def test_import_api_does_not_import_heavy_dependencies():
    code = ("import sys, mlem_lib.api; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_in_memory_apply_on_memory_filesystem():
    import mlem_lib.api as mlem

    mlem.save(lambda xs: [x * 2 for x in xs], "memory://api-test/double", sample_data=[1, 2])
    assert mlem.apply("memory://api-test/double", [4, 5]) == [8, 10]
    assert mlem.load_meta("memory://api-test/double").model_type.type == "callable"


def test_apply_accepts_an_object_without_saving(iris, iris_lr):
    import mlem_lib.api as mlem

    assert list(mlem.apply(iris_lr, iris[0].head(3))) == list(iris_lr.predict(iris[0].head(3)))
