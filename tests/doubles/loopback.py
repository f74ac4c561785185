"""The base of the API doubles: one request handler, served on 127.0.0.1 or called in-process.

A double implements :meth:`LoopbackServer.handle` (an ``httpx.Request`` in, an
``httpx.Response`` out). The same handler then serves two ways:

* :meth:`LoopbackServer.start` serves it over real HTTP from a stdlib
  ``ThreadingHTTPServer`` bound to port 0 (the OS picks a free port and the
  server reports it: no window where another process can take it);
* :meth:`LoopbackServer.transport` wraps it in an ``httpx.MockTransport``, for
  tests that need no socket at all.

Example:
    >>> class Echo(LoopbackServer):
    ...     def handle(self, request):
    ...         return httpx.Response(200, json={"path": request.url.path})
    >>> with httpx.Client(transport=Echo().transport(), base_url="http://x") as c:
    ...     c.get("/hello").json()
    {'path': '/hello'}
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

# requests carry these between hops; the server that answers sets its own
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
               "content-encoding"}


class LoopbackServer:
    """Serves :meth:`handle` until :meth:`stop_server`; subclasses implement ``handle``."""

    label = "test double"

    def __init__(self) -> None:
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.url = ""

    def handle(self, request: httpx.Request) -> httpx.Response:  # pragma: no cover
        raise NotImplementedError

    # --- in-process ------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        """An ``httpx`` transport that calls :meth:`handle` without a socket."""
        def call(request: httpx.Request) -> httpx.Response:
            request.read()
            return self.handle(request)

        return httpx.MockTransport(call)

    # --- over HTTP ---------------------------------------------------------------
    def start(self) -> str:
        """Serve on ``127.0.0.1:<port the OS picked>``; returns the base URL."""
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                port = double.httpd.server_address[1] if double.httpd else 0
                request = httpx.Request(self.command, f"http://127.0.0.1:{port}{self.path}",
                                        headers=list(self.headers.items()), content=body)
                try:
                    response = double.handle(request)
                except Exception as exc:  # a bug in the double: say so, as a 500
                    response = httpx.Response(500, json={"id": "double_error",
                                                         "message": repr(exc)})
                content = response.read()
                self.send_response(response.status_code)
                for key, value in response.headers.multi_items():
                    if key.lower() not in HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True,
                                       name=f"{self.label} :{port}")
        self.thread.start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop_server(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        if self.thread is not None:
            self.thread.join(10)
            self.thread = None


def json_response(status: int, body: Any, headers: dict[str, str] | None = None
                  ) -> httpx.Response:
    """A JSON answer (what every double's API speaks)."""
    return httpx.Response(status, json=body, headers=headers)
