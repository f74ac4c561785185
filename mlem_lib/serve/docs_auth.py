"""Requiring the bearer token on the documentation endpoints too (``--auth-docs``).

By default ``/docs``, ``/redoc``, ``/openapi.json``, ``/interface.json``, the model
page ``/`` and ``/metrics`` are open so that people, MLEM clients and Prometheus can
discover the API and watch it. With ``auth_docs`` on, they
need the same ``Authorization: Bearer <token>`` as the model endpoints; ``/health``
and ``/ping`` stay open for load balancers. A browser does not send that header, so
Swagger UI needs a proxy that adds it.

Example:
    >>> from fastapi import FastAPI
    >>> from fastapi.testclient import TestClient
    >>> app = protect_docs(FastAPI(), ServerSettings(auth_token="s3cret", auth_docs=True))
    >>> client = TestClient(app)
    >>> client.get("/openapi.json").status_code
    401
    >>> client.get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).status_code
    200
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from mlem_lib.serve.settings import ServerSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
                       "/interface.json", "/metrics", "/"})


class DocsAuth:
    """ASGI middleware answering 401 on :data:`DOC_PATHS` without the right bearer token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _authorized(self, scope: dict[str, Any]) -> tuple[bool, bool]:
        """(authorized, a header was sent)."""
        header = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value
                break
        scheme, _, given = header.partition(b" ")
        ok = scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)
        return ok, bool(header)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") not in DOC_PATHS:
            await self.app(scope, receive, send)
            return
        ok, sent = self._authorized(scope)
        if ok:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "missing or invalid bearer token", "field": "Authorization",
                           "expected": "Bearer <token>",
                           "got": "another token" if sent else "nothing"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})


def protect_docs(app: FastAPI, settings: ServerSettings) -> FastAPI:
    """Add :class:`DocsAuth` to ``app`` when ``settings.auth_docs`` is on; returns ``app``."""
    if settings.auth_docs and settings.auth_token:
        app.add_middleware(DocsAuth, token=settings.auth_token)  # type: ignore[arg-type]
    return app
