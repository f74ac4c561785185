"""Root pytest configuration: the docstring examples of ``mlem_lib`` run as tests.

Examples that need a running service (a deployment target, a registry remote) carry
``# doctest: +SKIP`` on every line. They are documentation, not tests: they are
deselected here so that the suite's "skipped" count only holds tests that could not run.
"""

from __future__ import annotations

import doctest

import pytest


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
