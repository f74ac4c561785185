"""The smoke test run after every rollout: one request built from the saved schema.

The payload is ``{"data": <example>}`` where the example comes from the first
argument's :meth:`~mlem_lib.data.base.DataType.example` encoded with its
``to_json``, so a model whose schema and server disagree fails right after the
rollout instead of on the first real request.

Example:
    >>> method, body = smoke_request(meta)  # doctest: +SKIP
    >>> check_http("http://127.0.0.1:8080", meta)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

from mlem_lib.errors import DeploymentError, SmokeTestError
from mlem_lib.meta import ModelMeta


def pick_method(meta: ModelMeta, method: str | None = None) -> str:
    """The method the smoke request calls: ``method``, else ``predict``, else the first one."""
    if method:
        meta.method(method)  # raises MethodNotFoundError naming the alternatives
        return method
    methods = meta.model_type.methods
    if "predict" in methods or "__call__" in methods:
        return "predict"
    if not methods:
        raise SmokeTestError("the model has no methods to call in a smoke test")
    return next(iter(methods))


def smoke_request(meta: ModelMeta, method: str | None = None) -> tuple[str, dict[str, Any]]:
    """The method name and the JSON body of the smoke request.

    Example:
        >>> smoke_request(meta)  # doctest: +SKIP
        ('predict', {'data': {'values': [{'sepal_length': 0.0, ...}]}})
    """
    name = pick_method(meta, method)
    sig = meta.method(name)
    if not sig.args:
        return name, {}
    dtype = sig.args[0].type_
    example = dtype.example()
    return name, {"data": dtype.to_json(example) if example is not None else None}


def wait_healthy(url: str, timeout: float, poll: float = 0.25, path: str = "/health",
                 alive: Any = None) -> None:
    """Poll ``url + path`` until it answers 200.

    Args:
        alive: optional callable; when it returns a string the wait stops with
            that message (e.g. the process died).

    Raises:
        DeploymentError: no 200 within ``timeout`` seconds.
    """
    import httpx

    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if alive is not None:
            problem = alive()
            if problem:
                raise DeploymentError(f"{url} did not come up: {problem}")
        try:
            r = httpx.get(url.rstrip("/") + path, timeout=5.0)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        if time.monotonic() >= deadline:
            raise DeploymentError(
                f"{url}{path} did not answer 200 within {timeout:g}s (last: {last})")
        time.sleep(poll)


def check_http(url: str, meta: ModelMeta, method: str | None = None,
               timeout: float = 30.0, headers: dict[str, str] | None = None) -> Any:
    """Send the smoke request to a server speaking MLEM's HTTP API.

    Returns:
        The decoded JSON answer.

    Raises:
        SmokeTestError: the request failed or did not answer 200 with JSON.
    """
    import httpx

    name, body = smoke_request(meta, method)
    try:
        r = httpx.post(f"{url.rstrip('/')}/{name}", json=body, timeout=timeout, headers=headers)
    except httpx.HTTPError as exc:
        raise SmokeTestError(f"smoke request to {url}/{name} failed: {exc!r}") from exc
    if r.status_code != 200:
        raise SmokeTestError(
            f"smoke request to {url}/{name} answered HTTP {r.status_code}: {r.text[:300]}")
    try:
        return r.json()
    except ValueError as exc:
        raise SmokeTestError(f"smoke request to {url}/{name} did not answer JSON") from exc
