"""When a failed task run is worth retrying.

Network steps (pushing an image, rolling out a deployment) fail for transient
reasons and get retried; a validation error fails the same way every time, so
retrying it only delays the report.

Example:
    >>> from prefect import task
    >>> @task(retries=2, retry_condition_fn=retry_unless_invalid)
    ... def push(): ...
"""

from __future__ import annotations

from typing import Any

from mlem_lib.errors import (
    ArtifactIntegrityError,
    CredentialsError,
    DockerUnavailableError,
    MetadataError,
    MethodNotFoundError,
    ObjectNotFoundError,
    RegistryError,
    SchemaError,
    UnsafePathError,
    UnsupportedObjectError,
)

#: Errors that a retry cannot fix: bad input, bad metadata, missing objects or credentials.
NOT_RETRYABLE: tuple[type[BaseException], ...] = (
    SchemaError, MetadataError, RegistryError, ObjectNotFoundError, UnsafePathError,
    ArtifactIntegrityError, UnsupportedObjectError, MethodNotFoundError, CredentialsError,
    DockerUnavailableError,
)

#: mlem_lib errors that also inherit one of these builtins describe bad input.
INPUT_KINDS: tuple[type[BaseException], ...] = (
    ValueError, TypeError, LookupError, AttributeError, PermissionError, FileNotFoundError)


def is_retryable(exc: BaseException | None) -> bool:
    """``False`` for validation-type errors (see :data:`NOT_RETRYABLE`), ``True`` otherwise.

    Example:
        >>> from mlem_lib.errors import SchemaError
        >>> is_retryable(SchemaError("bad column")), is_retryable(ConnectionError("reset"))
        (False, True)
    """
    if exc is None:
        return True
    from pydantic import ValidationError

    from mlem_lib.errors import MlemError

    if isinstance(exc, MlemError) and isinstance(exc, INPUT_KINDS):
        return False  # e.g. DeclarationError(DeploymentError, ValueError): a bad field
    return not isinstance(exc, (*NOT_RETRYABLE, ValidationError))


def failure_exception(state: Any) -> BaseException | None:
    """The exception a failed Prefect state holds (``None`` if it holds none)."""
    try:
        result = state.result(raise_on_failure=False)
    except BaseException as exc:  # some state types re-raise instead of returning
        return exc
    return result if isinstance(result, BaseException) else None


def retry_unless_invalid(task: Any, task_run: Any, state: Any) -> bool:
    """A Prefect ``retry_condition_fn``: retry unless the failure was a validation error."""
    return is_retryable(failure_exception(state))
