"""The one smoke test: is the server that answers serving the model just deployed, and
does one request succeed?

Every rollout, rollback and the Prefect ``smoke_test`` task go through this module:

1. :func:`wait_healthy` polls ``GET /health`` until it answers 200 and, when a
   ``model_hash`` is given, reports that hash (a server left over from another run,
   or a previous version still answering, does not pass);
2. one ``POST /<method>`` request: given rows (:func:`smoke_test` with ``data``), or
   the example built from the saved schema (:class:`SmokeRequest`): the first
   argument's :meth:`~mlem_lib.data.base.DataType.example` encoded with its
   ``to_json``, so a model whose schema and server disagree fails right after the
   rollout instead of on the first real request. The answer must be 200 with a
   non-empty JSON body.

Example:
    >>> request = SmokeRequest.for_model(meta)  # doctest: +SKIP
    >>> smoke_test("http://127.0.0.1:8080", model_hash=meta.model_hash,
    ...            request=request)  # doctest: +SKIP
    [0]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from mlem_lib.errors import DeploymentError, SmokeTestError
from mlem_lib.meta import ModelMeta

__all__ = ["SmokeRequest", "check_http", "pick_method", "smoke_request", "smoke_test",
           "wait_healthy"]

Alive = Callable[[], str | None]


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


#: how many rows of a smoke data file (``smoke_data`` / ``--sample``) the request sends
SMOKE_ROWS = 5


def smoke_rows(meta: ModelMeta, method: str, data_file: str,
               rows: int = SMOKE_ROWS) -> dict[str, Any]:
    """The JSON body holding the first ``rows`` rows of ``data_file`` (CSV, JSON Lines,
    Parquet, ``.npy`` or a saved data object; a path or URL), read with the method's saved
    schema as ``mlem apply`` reads it.

    Raises:
        SmokeTestError: the file is missing, unreadable or does not fit the schema.
    """
    from mlem_lib.errors import MlemError
    from mlem_lib.formats import open_source

    sig = meta.method(method)
    dtype = sig.args[0].type_ if sig.args else None
    try:
        source = open_source(data_file, dtype)
        chunk = next(iter(source.chunks(rows)), None)
        if chunk is None:
            raise SmokeTestError(f"smoke data {data_file} has no rows")
        if dtype is None:
            from mlem_lib.data.base import infer_data_type

            dtype = infer_data_type(chunk)
        return {"data": dtype.to_json(dtype.validate_value(chunk))}
    except SmokeTestError:
        raise
    except (MlemError, OSError, ValueError) as exc:
        raise SmokeTestError(f"smoke data {data_file}: {exc}") from exc


def smoke_request(meta: ModelMeta, method: str | None = None,
                  data_file: str | None = None) -> tuple[str, dict[str, Any]]:
    """The method name and the JSON body of the smoke request: the first rows of
    ``data_file`` when given (see :func:`smoke_rows`), else the example row saved with the
    method (the sample's first row), else one built from the saved schema.

    Raises:
        SmokeTestError: no example can be built from the schema, or ``data_file`` cannot
            be read with it (the message says why).

    Example:
        >>> smoke_request(meta)  # doctest: +SKIP
        ('predict', {'data': {'values': [{'sepal_length': 0.0, ...}]}})
    """
    name = pick_method(meta, method)
    sig = meta.method(name)
    if data_file:
        return name, smoke_rows(meta, name, data_file)
    if not sig.args:
        return name, {}
    if sig.args[0].example is not None:  # the first row of the sample given at save
        return name, {"data": sig.args[0].example}
    dtype = sig.args[0].type_
    try:
        example = dtype.example()
        body = {"data": dtype.to_json(example) if example is not None else None}
    except Exception as exc:  # a data type that cannot build or encode its example
        raise SmokeTestError(f"cannot build the smoke request for {name!r} from the saved "
                             f"schema ({type(exc).__name__}: {exc}); set smoke_method in "
                             "the declaration to a method whose input can be") from exc
    return name, body


class SmokeRequest(BaseModel):
    """A smoke request: recorded with each deployment so a rollback can replay it.

    Attributes:
        method: the model method (``predict``).
        body: the JSON body (``{"data": ...}``).
    """

    method: str
    body: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def for_model(cls, meta: ModelMeta, method: str | None = None,
                  data_file: str | None = None) -> SmokeRequest:
        """The request built from ``data_file``'s first rows or the model's saved example
        or schema (see :func:`smoke_request`)."""
        name, body = smoke_request(meta, method, data_file)
        return cls(method=name, body=body)


def _health(client: Any, url: str, path: str) -> tuple[int, Any]:
    r = client.get(url.rstrip("/") + path)
    try:
        body = r.json() if r.status_code == 200 else None
    except ValueError:
        body = None
    return r.status_code, body


def wait_healthy(url: str, timeout: float, poll: float = 0.25, path: str = "/health",
                 alive: Alive | None = None, model_hash: str | None = None,
                 headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Poll ``url + path`` until it answers 200 (reporting ``model_hash`` when given).

    Args:
        timeout: seconds to keep polling (0: ask once).
        poll: seconds between polls.
        alive: optional callable; when it returns a string the wait stops with that
            message (e.g. the process died).
        model_hash: the hash the server must report in its ``/health`` body.
        headers: extra request headers.

    Returns:
        The ``/health`` body.

    Raises:
        SmokeTestError: a server answers but serves another model (after ``timeout``).
        DeploymentError: no 200 within ``timeout`` seconds, or ``alive`` reported a problem.
    """
    import httpx

    deadline = time.monotonic() + timeout
    last = "no answer"
    other: str | None = None
    with httpx.Client(timeout=5.0, headers=headers, trust_env=False) as client:
        while True:
            if alive is not None:
                problem = alive()
                if problem:
                    raise DeploymentError(f"{url} did not come up: {problem}")
            try:
                code, body = _health(client, url, path)
                if code == 200:
                    served = body.get("model_hash") if isinstance(body, dict) else None
                    if model_hash is None or served == model_hash:
                        return body if isinstance(body, dict) else {}
                    other = str(served) if served else "no model_hash"
                    last = f"it reports {other}"
                else:
                    last = f"HTTP {code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if time.monotonic() >= deadline:
                if other is not None and model_hash and last.startswith("it reports"):
                    raise SmokeTestError(
                        f"the server at {url} does not serve model {model_hash[:12]}: "
                        f"its {path} reports {other[:12]} (another server holds the port?)")
                raise DeploymentError(
                    f"{url}{path} did not answer 200 within {timeout:g}s (last: {last})")
            time.sleep(poll)


def _post(url: str, method: str, body: dict[str, Any], timeout: float,
          headers: dict[str, str] | None) -> Any:
    import httpx

    target = f"{url.rstrip('/')}/{method}"
    try:
        r = httpx.post(target, json=body, timeout=timeout, headers=headers, trust_env=False)
    except httpx.HTTPError as exc:
        raise SmokeTestError(f"smoke request to {target} failed: {type(exc).__name__}: "
                             f"{exc}") from exc
    if r.status_code != 200:
        raise SmokeTestError(f"smoke request to {target} answered HTTP {r.status_code}: "
                             f"{r.text[:300]}")
    try:
        answer = r.json()
    except ValueError as exc:
        raise SmokeTestError(f"smoke request to {target} did not answer JSON: "
                             f"{r.text[:200]}") from exc
    if answer is None or answer == [] or answer == {}:
        raise SmokeTestError(f"smoke request to {target} answered an empty result: "
                             f"{answer!r}")
    return answer


def check_http(url: str, meta: ModelMeta, method: str | None = None,
               timeout: float = 30.0, headers: dict[str, str] | None = None,
               data_file: str | None = None) -> Any:
    """Send the smoke request built from ``meta`` (or ``data_file``'s first rows) to a
    server speaking MLEM's API.

    Returns:
        The decoded JSON answer.

    Raises:
        SmokeTestError: the request failed or did not answer 200 with a non-empty JSON body.
    """
    request = SmokeRequest.for_model(meta, method, data_file)
    return _post(url, request.method, request.body, timeout, headers)


def _payload(data: Any) -> Any:
    """JSON values go as they are; DataFrames, arrays... in the server's wire format."""
    if data is None or isinstance(data, dict | list | str | int | float | bool):
        return data
    from mlem_lib.data.base import infer_data_type

    return infer_data_type(data).to_json(data)


def smoke_test(url: str, *, model_hash: str | None = None, data: Any = None,
               method: str = "predict", request: SmokeRequest | None = None,
               auth_token: str | None = None, timeout: float = 60.0, poll: float = 0.5,
               request_timeout: float = 30.0, alive: Alive | None = None) -> Any:
    """Wait until ``url`` serves ``model_hash``, then send one request and check the answer.

    Args:
        url: the server's base URL.
        model_hash: the hash ``/health`` must report (``None``: any model).
        data: rows to send (a DataFrame, an array, or JSON) to ``method``.
        method: the model method ``data`` goes to.
        request: a prepared request (the schema's example) used when ``data`` is ``None``.
        auth_token: bearer token when the server requires one.
        timeout: seconds to wait for ``/health``.
        poll: seconds between health polls.
        request_timeout: seconds for the request itself.
        alive: optional callable that reports a dead server (see :func:`wait_healthy`).

    Returns:
        The decoded JSON answer, or ``None`` when nothing was sent (no data, no request).

    Raises:
        SmokeTestError: the server did not become healthy, serves another model, or the
            request did not answer 200 with a non-empty JSON body; the message says which.

    Example:
        >>> smoke_test("http://127.0.0.1:8080", data=[[5.1, 3.5, 1.4, 0.2]])  # doctest: +SKIP
        [0]
    """
    headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else None
    try:
        wait_healthy(url, timeout, poll, alive=alive, model_hash=model_hash, headers=headers)
    except SmokeTestError:
        raise
    except DeploymentError as exc:
        raise SmokeTestError(str(exc)) from exc
    if data is not None:
        return _post(url, method, {"data": _payload(data)}, request_timeout, headers)
    if request is not None:
        return _post(url, request.method, request.body, request_timeout, headers)
    return None
