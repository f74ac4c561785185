"""A Python client for servers started by ``mlem serve`` (and MLEM 0.4's servers).

It reads ``/interface.json`` once and exposes each method as an attribute.
Small inputs travel as MLEM's JSON; big batches (at least ``FAST_ROWS`` rows)
travel in their data type's binary media type (Parquet for tables, ``.npy`` for
arrays and tensors) and the answer comes back in the return type's, when the server
is mlem_lib's; so do single files (an image as PNG, audio as its own bytes). Bodies
are written and read by the data types themselves.

Like ``httpx.Client(transport=...)``, the client takes an ``httpx.Client`` or a
transport, so it can be pointed at an in-process app or an ``httpx.MockTransport``.

Example:
    >>> import httpx, json
    >>> INT = {"type": "primitive", "ptype": "int"}
    >>> def server(request: httpx.Request) -> httpx.Response:
    ...     if request.url.path == "/interface.json":
    ...         return httpx.Response(200, json={"methods": {"predict": {
    ...             "args": [{"name": "data", "data_type": INT}],
    ...             "returns": {"data_type": INT}}}})
    ...     return httpx.Response(200, json=2 * json.loads(request.content)["data"])
    >>> with HTTPClient("http://model", transport=httpx.MockTransport(server)) as client:
    ...     client.predict(21)
    42
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from mlem_lib.errors import MethodNotFoundError, SchemaError, ServeError, ServerUnreachableError

if TYPE_CHECKING:
    import httpx

    from mlem_lib.data.base import DataType

FAST_ROWS = 1000


class HTTPClient:
    """Calls the methods of a served model.

    Args:
        url: the server's base URL, e.g. ``http://127.0.0.1:8080``.
        client: an ``httpx.Client`` to send requests with (its transport, proxies,
            event hooks...); it is left open by :meth:`close`. ``timeout`` does not apply.
        transport: an ``httpx`` transport for the client this object creates
            (``httpx.MockTransport``, ``httpx.WSGITransport``...).
        auth_token: sent as ``Authorization: Bearer <token>``.
        timeout: seconds per request (for the client this object creates).
        binary_rows: batches of at least this many rows travel in their binary media
            type (Parquet, ``.npy``) when the server speaks it; smaller ones as JSON.

    Raises:
        ServerUnreachableError: the server cannot be reached.
        ServeError: its interface is unreadable.
    """

    def __init__(self, url: str, *, client: httpx.Client | None = None,
                 transport: httpx.BaseTransport | None = None, auth_token: str | None = None,
                 timeout: float = 60.0, binary_rows: int = FAST_ROWS) -> None:
        import httpx

        from mlem_lib.data.base import parse_data_type

        if client is not None and transport is not None:
            raise ValueError("give HTTPClient a client or a transport, not both")
        self.url = url.rstrip("/")
        self.binary_rows = binary_rows
        self._headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
        self._owns_http = client is None
        self._http = client if client is not None else httpx.Client(transport=transport,
                                                                    timeout=timeout)
        try:
            response = self._http.get(f"{self.url}/interface.json", headers=self._headers)
        except httpx.HTTPError as exc:
            self.close()
            raise ServerUnreachableError(f"cannot reach the model server at {self.url}: "
                                         f"{exc}") from None
        if response.status_code != 200:
            self.close()
            raise ServeError(f"GET {self.url}/interface.json answered "
                             f"{response.status_code}: {response.text[:200]}")
        self.interface: dict[str, Any] = response.json()
        meta = self.interface.get("meta") or {}
        self._fast = isinstance(meta, dict) and meta.get("server") == "mlem_lib"
        schemas = meta.get("schemas") if self._fast else None
        schemas = schemas if isinstance(schemas, dict) else {}
        self._args: dict[str, tuple[str, DataType]] = {}
        self._returns: dict[str, DataType] = {}
        self._media: dict[str, tuple[tuple[str, ...], tuple[str, ...]] | None] = {}
        self._columns: dict[str, list[str] | None] = {}
        for name, method in self.interface.get("methods", {}).items():
            args = method.get("args") or [{"name": "data", "data_type": None}]
            full = schemas.get(name) or {}  # with the fields MLEM's layout leaves out
            arg_type = (full.get("args") or [None])[0] or args[0].get("data_type")
            self._args[name] = (args[0]["name"], parse_data_type(arg_type))
            self._returns[name] = parse_data_type(
                full.get("returns") or (method.get("returns") or {}).get("data_type"))
            columns = full.get("output_columns")
            self._columns[name] = [str(c) for c in columns] if isinstance(columns, list) \
                else None
            reads, answers = full.get("media_types"), full.get("answers")
            self._media[name] = ((tuple(reads), tuple(answers)) if isinstance(reads, list)
                                 and isinstance(answers, list) else None)

    @property
    def methods(self) -> list[str]:
        """The names of the served methods."""
        return list(self._args)

    def arg_type(self, method: str) -> DataType:
        """The data type of ``method``'s argument, as the server describes it.

        Raises:
            MethodNotFoundError: the server has no such method.
        """
        if method not in self._args:
            raise MethodNotFoundError(f"the server has no method '{method}' (it has: "
                                      f"{', '.join(self._args) or 'none'})")
        return self._args[method][1]

    def return_type(self, method: str) -> DataType:
        """The data type of ``method``'s result, as the server describes it.

        Raises:
            MethodNotFoundError: the server has no such method.
        """
        self.arg_type(method)
        return self._returns[method]

    def output_columns(self, method: str) -> list[str] | None:
        """The names of the columns of ``method``'s 2-D results (``proba_setosa``...), when
        the server says (``None`` otherwise)."""
        self.arg_type(method)
        return self._columns.get(method)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.__dict__.get("_args", {}):
            raise AttributeError(name)
        return partial(self.call, name)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._args]

    def call(self, method: str, data: Any) -> Any:
        """Call ``method`` on ``data`` and decode the answer with the method's return schema.

        Raises:
            MethodNotFoundError: the server has no such method.
            SchemaError: the server rejected the input (4xx naming the field).
            ServerUnreachableError: the server could not be reached.
            ServeError: any other failure, including a model exception (500).
        """
        import httpx

        from mlem_lib.serve import codecs

        arg_type = self.arg_type(method)
        arg_name = self._args[method][0]
        returns = self._returns[method]
        content, ctype, accept = self._encode(data, arg_name, arg_type, returns,
                                              self._media.get(method))
        try:
            response = self._http.post(f"{self.url}/{method}", content=content,
                                       headers={**self._headers, "Content-Type": ctype,
                                                "Accept": accept})
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"POST {self.url}/{method} failed: {exc}") from None
        except httpx.HTTPError as exc:
            raise ServeError(f"POST {self.url}/{method} failed: {exc}") from None
        if response.status_code != 200:
            raise _error(response, method)
        try:
            kind, params = codecs.body_media_type(response.headers.get("content-type"),
                                                  returns.media_types())
        except codecs.HTTPProblem as exc:
            raise ServeError(f"{method}: the server answered in a media type the return "
                             f"type does not read: {exc}") from None
        return returns.decode(response.content, kind, params)

    def _encode(self, data: Any, arg_name: str, arg_type: DataType, returns: DataType,
                server: tuple[tuple[str, ...], tuple[str, ...]] | None = None
                ) -> tuple[bytes, str, str]:
        """The body, its Content-Type and the Accept header of a call.

        Big batches go in a binary media type only when both sides speak it: this
        process (the data type lists it) and the server (its ``/interface.json`` does).
        """
        from mlem_lib.data import media
        from mlem_lib.serve import codecs

        rows = arg_type.rows(data)
        big = self._fast and rows is not None and rows >= self.binary_rows
        accept = (returns.binary_media_type() if big else None) or codecs.JSON
        if server is not None and accept not in server[1]:
            accept = codecs.JSON  # the server runs where that format is not installed
        # whole files (images, audio) travel as they are, not as base64 in JSON
        whole = self._fast and rows is None
        binary = arg_type.binary_media_type(data) if big or whole else None
        if binary is not None and server is not None and binary not in server[0]:
            binary = None
        if binary is not None:
            return arg_type.encode(data, binary), binary, accept
        payload = arg_type.to_json(arg_type.validate_value(data))
        # NaN and infinities as their tokens: orjson alone writes them as null (missing)
        body = media.dumps_json({arg_name: payload})
        return body, codecs.JSON, accept

    def close(self) -> None:
        """Close the connection pool (not that of an ``httpx.Client`` passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> HTTPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(response: Any, method: str) -> Exception:
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:500]}
    if not isinstance(body, dict):
        body = {"error": str(body)}
    message = str(body.get("error") or body.get("detail") or body)
    status = response.status_code
    if 400 <= status < 500 and status not in (401, 403, 404, 405):
        return SchemaError(f"{method}: server answered {status}: {message}",
                           field=body.get("field"), expected=body.get("expected"),
                           got=body.get("got"))
    return ServeError(f"{method}: server answered {status}: {message}")
