"""A model server of a local deployment: private port first, the public socket when told.

Started by the ``local`` target as ``python -m mlem_lib.deploy.worker`` (a background
process, or a container of the model's image with this module as its entrypoint),
with its settings in the environment:

* ``MLEM_MODEL``: the model to serve;
* ``MLEM_LISTENER``: the unix socket of the deployment's listener
  (:mod:`mlem_lib.deploy.listener`), which hands out the public listening socket;
* ``MLEM_PRIVATE_HOST`` (default ``127.0.0.1``): where the private port is bound;
* the server's own settings (``MLEM_AUTH_TOKEN``, ``MLEM_MAX_BODY_MB``...).

It loads the model, serves it on a private port chosen by the OS and prints
``mlem-worker: private <host>:<port>``; the deployment smoke-tests it there. On
``SIGUSR1`` it fetches the public socket and accepts on it too, then prints
``mlem-worker: public``. Before it is stopped, ``SIGUSR2`` makes it stop accepting
on the public socket (``mlem-worker: retired``) while it answers the connections it
already took, so the ``SIGTERM`` that follows a moment later finds none of them still
waiting for their request: uvicorn's graceful shutdown closes such idle connections,
which their clients would see as a dropped request. The other worker keeps accepting
on the same public socket all along.

Example:
    >>> # MLEM_MODEL=models/rf MLEM_LISTENER=/run/rf/listener.sock python -m mlem_lib.deploy.worker
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from typing import Any

PRIVATE = "mlem-worker: private"
PUBLIC = "mlem-worker: public"
RETIRED = "mlem-worker: retired"
FAILED = "mlem-worker: public failed"
ENV_LISTENER = "MLEM_LISTENER"
ENV_PRIVATE_HOST = "MLEM_PRIVATE_HOST"


def _say(line: str) -> None:
    print(line, flush=True)


def _server_class() -> type[Any]:
    import uvicorn

    class WorkerServer(uvicorn.Server):  # type: ignore[misc]
        """uvicorn's server, plus: accept on the public socket when ``SIGUSR1`` comes."""

        def __init__(self, config: uvicorn.Config, listener: str, private: str) -> None:
            super().__init__(config)
            self.listener = listener
            self.private = private
            self.public: Any = None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.should_exit:
                return
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGUSR1,
                                    lambda: loop.create_task(self.go_public()))
            loop.add_signal_handler(signal.SIGUSR2, self.retire)
            _say(f"{PRIVATE} {self.private}")

        async def go_public(self) -> None:
            if self.public is not None or self.should_exit:
                return
            from mlem_lib.deploy.listener import fetch_listener

            loop = asyncio.get_running_loop()
            try:
                sock = await loop.run_in_executor(None, fetch_listener, self.listener)
            except OSError as exc:
                _say(f"{FAILED}: {exc}")
                return
            config = self.config
            protocol: Any = config.http_protocol_class

            def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> Any:
                # the protocol factory uvicorn's startup() builds for its own sockets
                return protocol(config=config, server_state=self.server_state,
                                app_state=self.lifespan.state, _loop=_loop)

            server = await loop.create_server(create_protocol, sock=sock,
                                              backlog=config.backlog)
            self.servers.append(server)  # uvicorn's shutdown closes it with the others
            self.public = server
            _say(PUBLIC)

        def retire(self) -> None:
            """Stop accepting on the public socket; keep serving what was accepted."""
            if self.public is not None:
                self.public.close()  # our copy of the socket: the other worker still accepts
            _say(RETIRED)

    return WorkerServer


def main() -> int:
    """Serve ``MLEM_MODEL`` privately, and publicly after ``SIGUSR1``; returns the exit code."""
    import uvicorn

    from mlem_lib.errors import MlemError
    from mlem_lib.runner import LoadedModel
    from mlem_lib.serve.app import create_app
    from mlem_lib.serve.runner import GRACEFUL_SECONDS, settle_heap
    from mlem_lib.serve.settings import ENV_MODEL, ServerSettings

    model, listener = os.environ.get(ENV_MODEL), os.environ.get(ENV_LISTENER)
    if not model or not listener:
        print(f"error: set {ENV_MODEL} and {ENV_LISTENER}", file=sys.stderr)
        return 2
    host = os.environ.get(ENV_PRIVATE_HOST) or "127.0.0.1"
    try:
        settings = ServerSettings.from_env()
        loaded = LoadedModel.load(model)
        if settings.model_runtime != "native":  # the declaration's model_runtime: onnx|auto
            from mlem_lib.serve.model_runtime import with_runtime

            loaded = with_runtime(loaded, settings.model_runtime, onnx_model=settings.onnx_model,
                                  path=model, log=lambda line: print(line, file=sys.stderr,
                                                                    flush=True))
        app = create_app(loaded, settings)
    except MlemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    settle_heap()
    private = socket.create_server((host, 0))
    bound = private.getsockname()
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                            proxy_headers=True, timeout_graceful_shutdown=GRACEFUL_SECONDS)
    server = _server_class()(config, listener, f"{bound[0]}:{bound[1]}")
    server.run(sockets=[private])
    return 0


if __name__ == "__main__":
    sys.exit(main())
