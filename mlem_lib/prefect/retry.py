"""When a failed task run is worth retrying: when its failure is transient.

The library says which failures a retry may fix: they derive from
:class:`~mlem_lib.errors.TransientError` (the network, an object store, a target
that is not ready yet). Python's own ``ConnectionError`` and ``TimeoutError`` are
transient by definition. Everything else (bad input, a missing object, a model
that fails its smoke test) fails the same way every time, so retrying it would
only roll a broken model out again and delay the report.

Example:
    >>> from prefect import task
    >>> @task(retries=2, retry_condition_fn=retry_if_transient)
    ... def push(): ...
"""

from __future__ import annotations

from typing import Any

from mlem_lib.errors import TransientError

#: The failures a retry may fix.
TRANSIENT: tuple[type[BaseException], ...] = (TransientError, ConnectionError, TimeoutError)


def is_transient(exc: BaseException | None) -> bool:
    """True for failures a retry may fix.

    Example:
        >>> from mlem_lib.errors import NetworkError, SchemaError, SmokeTestError
        >>> [is_transient(e) for e in (NetworkError("reset"), SchemaError("bad column"),
        ...                            SmokeTestError("HTTP 500"), None)]
        [True, False, False, False]
    """
    return isinstance(exc, TRANSIENT)


def failure_exception(state: Any) -> BaseException | None:
    """The exception a failed Prefect state holds (``None`` if it holds none)."""
    try:
        result = state.result(raise_on_failure=False)
    except BaseException as exc:  # some state types re-raise instead of returning
        return exc
    return result if isinstance(result, BaseException) else None


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """A Prefect ``retry_condition_fn``: retry transient failures only."""
    return is_transient(failure_exception(state))
