"""Which failures of the libraries we call are worth a retry, decided in one place.

Object stores, registries and cloud APIs fail through their client libraries' own
exception classes (httpx, botocore, aiohttp, requests, urllib3, docker). At the
boundaries where mlem_lib calls them, :func:`reraise_transient` turns the ones a retry may
fix into :class:`~mlem_lib.errors.TransientError` subclasses, so that callers (Prefect's
retry conditions among them) decide with one ``isinstance`` check and never by module name.

The classes are recognised by name, without importing the libraries.

Example:
    >>> is_transient(ConnectionResetError()), is_transient(ValueError("bad column"))
    (True, False)
    >>> from mlem_lib.errors import TransientError
    >>> try:
    ...     with reraise_transient("saving s3://bucket/rf"):
    ...         raise TimeoutError("read timed out")
    ... except TransientError as exc:
    ...     print(type(exc).__name__, "-", exc)
    NetworkError - saving s3://bucket/rf: TimeoutError: read timed out
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlem_lib.errors import MlemError, NetworkError, TransientError, TransientStorageError

# (top-level module, class name) of exceptions that mean "the network or the remote side
# failed for now"; any class in the exception's MRO may match
_TRANSIENT_CLASSES = {
    ("httpx", "TransportError"), ("httpx", "TimeoutException"),
    ("httpcore", "NetworkError"), ("httpcore", "TimeoutException"),
    ("httpcore", "RemoteProtocolError"),
    ("botocore", "EndpointConnectionError"), ("botocore", "ConnectionClosedError"),
    ("botocore", "ReadTimeoutError"), ("botocore", "ConnectTimeoutError"),
    ("botocore", "ConnectionError"),
    ("aiohttp", "ClientConnectionError"), ("aiohttp", "ServerTimeoutError"),
    ("aiohttp", "ClientPayloadError"),
    ("requests", "ConnectionError"), ("requests", "Timeout"),
    ("urllib3", "ProtocolError"), ("urllib3", "NewConnectionError"),
    ("urllib3", "MaxRetryError"), ("urllib3", "TimeoutError"),
}
# error codes of AWS-style APIs that ask the caller to come back later
_TRANSIENT_CODES = {"Throttling", "ThrottlingException", "ThrottledException",
                    "RequestLimitExceeded", "TooManyRequestsException", "SlowDown",
                    "RequestTimeout", "RequestTimeoutException", "ServiceUnavailable",
                    "InternalError", "InternalFailure", "PriorRequestNotComplete"}
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def _aws_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _one_is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, MlemError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    for cls in type(exc).__mro__:
        if (cls.__module__.split(".")[0], cls.__name__) in _TRANSIENT_CLASSES:
            return True
    if _aws_code(exc) in _TRANSIENT_CODES:
        return True
    top = type(exc).__module__.split(".")[0]
    status = getattr(exc, "status_code", None)
    return top == "docker" and isinstance(status, int) and status in _TRANSIENT_STATUS


def is_transient(exc: BaseException | None) -> bool:
    """True when ``exc``, or an exception it was raised from, is worth a retry.

    Example:
        >>> try:
        ...     try:
        ...         raise ConnectionRefusedError()
        ...     except ConnectionRefusedError as inner:
        ...         raise OSError("could not write") from inner
        ... except OSError as outer:
        ...     is_transient(outer)
        True
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, MlemError) and not isinstance(exc, TransientError):
            return False
        if _one_is_transient(exc):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@contextmanager
def reraise_transient(what: str, *, storage: bool = False) -> Iterator[None]:
    """Re-raise a transient third-party failure inside the block as a ``TransientError``.

    Errors of our own tree and failures a retry cannot fix pass through unchanged.

    Args:
        what: what was being done, for the message ("saving s3://bucket/rf").
        storage: raise :class:`TransientStorageError` (an object store) instead of
            :class:`NetworkError`.
    """
    try:
        yield
    except MlemError:
        raise
    except Exception as exc:
        if not is_transient(exc):
            raise
        cls: Any = TransientStorageError if storage else NetworkError
        raise cls(f"{what}: {type(exc).__name__}: {exc}") from exc
