"""A FastAPI app served by uvicorn in a thread on 127.0.0.1: the base of the API doubles."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.conftest import free_port


class LoopbackServer:
    """Serves ``self.app`` (set by the subclass) until :meth:`stop_server`."""

    label = "test double"

    def __init__(self) -> None:
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        """Start serving on a free port; return the base URL once uvicorn listens."""
        import uvicorn

        port = free_port()
        app: Any = getattr(self, "app")  # noqa: B009 - set by the subclass
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the {self.label} did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
