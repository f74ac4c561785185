"""Root pytest configuration: the docstring examples of ``mlem_lib`` run as tests.

Every example runs in a fresh working directory that holds ``models/rf`` (an iris
random forest saved with its sample), with ``X`` (the iris features), ``y`` (the
labels) and ``X_test`` (three rows) defined, so examples read like a user's session.

Examples that need a running service (a deployment target, a registry remote) carry
``# doctest: +SKIP`` on every line. They are documentation, not tests: they are
deselected here so that the suite's "skipped" count only holds tests that could not run.
"""

from __future__ import annotations

import doctest
import shutil
from pathlib import Path
from typing import Any

import pytest
from _pytest.doctest import DoctestItem


def _all_examples_skipped(item: pytest.Item) -> bool:
    test = getattr(item, "dtest", None)
    if not isinstance(test, doctest.DocTest):
        return False
    return all(example.options.get(doctest.SKIP, False) for example in test.examples)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shown_only = [item for item in items if _all_examples_skipped(item)]
    if shown_only:
        config.hook.pytest_deselected(items=shown_only)
        items[:] = [item for item in items if not _all_examples_skipped(item)]


@pytest.fixture(scope="session")
def _doctest_workdir_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    import mlem_lib.api as mlem

    root = tmp_path_factory.mktemp("doctest-workdir")
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    mlem.save(model, str(root / "models" / "rf"), sample_data=X)
    return root, X, y


@pytest.fixture(autouse=True)
def _doctest_workdir(request: pytest.FixtureRequest) -> None:
    """For docstring examples only: ``models/rf`` in the working directory, ``X``, ``y``."""
    if not isinstance(request.node, DoctestItem):
        return
    template, X, y = request.getfixturevalue("_doctest_workdir_template")
    workdir = request.getfixturevalue("tmp_path") / "work"
    shutil.copytree(template, workdir)
    request.getfixturevalue("monkeypatch").chdir(workdir)
    namespace = request.getfixturevalue("doctest_namespace")
    namespace.update(X=X, y=y, X_test=X.sample(3, random_state=1))
