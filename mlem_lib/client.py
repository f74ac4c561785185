"""A Python client for servers started by ``mlem serve`` (and MLEM 0.4's servers).

It reads ``/interface.json`` once and exposes each method as an attribute.
Small inputs travel as MLEM's JSON; big DataFrames and arrays (at least
``FAST_ROWS`` rows) travel as Parquet / ``.npy`` and the answer comes back in
the matching binary format when the server is mlem_lib's.

Example:
    >>> client = HTTPClient("http://127.0.0.1:8080")  # doctest: +SKIP
    >>> client.predict(df)  # doctest: +SKIP
    array([0, 0, 1])
"""

from __future__ import annotations

from functools import partial
from typing import Any

from mlem_lib.errors import MethodNotFoundError, SchemaError, ServeError

FAST_ROWS = 1000


class HTTPClient:
    """Calls the methods of a served model.

    Args:
        url: the server's base URL, e.g. ``http://127.0.0.1:8080``.
        auth_token: sent as ``Authorization: Bearer <token>``.
        timeout: seconds per request.

    Raises:
        ServeError: the server cannot be reached or its interface is unreadable.
    """

    def __init__(self, url: str, auth_token: str | None = None, timeout: float = 60.0) -> None:
        import httpx

        from mlem_lib.data.base import parse_data_type

        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        try:
            response = self._http.get("/interface.json")
        except httpx.HTTPError as exc:
            self._http.close()
            raise ServeError(f"cannot reach the model server at {self.url}: {exc}") from None
        if response.status_code != 200:
            self._http.close()
            raise ServeError(f"GET {self.url}/interface.json answered "
                             f"{response.status_code}: {response.text[:200]}")
        self.interface: dict[str, Any] = response.json()
        self._fast = (self.interface.get("meta") or {}).get("server") == "mlem_lib"
        self._args: dict[str, tuple[str, Any]] = {}
        self._returns: dict[str, Any] = {}
        for name, method in self.interface.get("methods", {}).items():
            args = method.get("args") or [{"name": "data", "data_type": None}]
            self._args[name] = (args[0]["name"], parse_data_type(args[0].get("data_type")))
            self._returns[name] = parse_data_type((method.get("returns") or {}).get(
                "data_type"))

    @property
    def methods(self) -> list[str]:
        """The names of the served methods."""
        return list(self._args)

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
            ServeError: any other failure, including a model exception (500).

        Example:
            >>> client.call("predict_proba", df)  # doctest: +SKIP
        """
        import httpx

        from mlem_lib.serve import codecs

        if method not in self._args:
            raise MethodNotFoundError(f"the server has no method '{method}' (it has: "
                                      f"{', '.join(self._args) or 'none'})")
        arg_name, arg_type = self._args[method]
        returns = self._returns[method]
        content, ctype, accept = self._encode(data, arg_name, arg_type, returns)
        try:
            response = self._http.post(f"/{method}", content=content,
                                       headers={"Content-Type": ctype, "Accept": accept})
        except httpx.HTTPError as exc:
            raise ServeError(f"POST {self.url}/{method} failed: {exc}") from None
        if response.status_code != 200:
            raise _error(response, method)
        kind = codecs.media_type(response.headers.get("content-type"))
        return codecs.from_output(response.content, kind, returns)

    def _encode(self, data: Any, arg_name: str, arg_type: Any, returns: Any
                ) -> tuple[bytes, str, str]:
        import orjson

        from mlem_lib.serve import codecs

        module = type(data).__module__.split(".")[0]
        big = self._fast and hasattr(data, "shape") and len(data) >= FAST_ROWS
        accept = codecs.JSON
        if big and returns.type in ("ndarray", "series"):
            accept = codecs.NPY
        elif big and returns.type == "dataframe":
            accept = codecs.PARQUET
        if big and module == "pandas" and hasattr(data, "columns"):
            import io

            buf = io.BytesIO()
            data.to_parquet(buf, index=bool(getattr(arg_type, "index_cols", None)))
            return buf.getvalue(), codecs.PARQUET, accept
        if big and module == "numpy" and data.dtype.kind in "biuf":
            return codecs.dumps(data, arg_type, codecs.NPY), codecs.NPY, accept
        if arg_type.type not in ("unspecified", "unknown"):
            arg_type.validate_value(data)
            payload = arg_type.to_json(data)
        else:
            from mlem_lib.data.convert import to_jsonable

            payload = to_jsonable(data)
        body = orjson.dumps({arg_name: payload}, option=orjson.OPT_SERIALIZE_NUMPY)
        return body, codecs.JSON, accept

    def close(self) -> None:
        """Close the connection pool."""
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
