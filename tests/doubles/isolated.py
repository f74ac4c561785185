"""Where the doubles run a model server: containers with a network of their own, reached
through ``docker exec``, or local processes on machines without Docker.

Heroku dynos and SageMaker instances each get a private network: a SageMaker
container listens on 8080 (unless ``SAGEMAKER_BIND_TO_PORT`` says otherwise),
and two of them run side by side during an endpoint update. The test engine has
no bridge network (``--bridge=none``), so the doubles run such containers with
``network_mode="none"``: each has its own loopback interface and port 8080 never
collides with anything on the host. A request reaches the server inside by
running a tiny relay (:data:`RELAY`, Python's ``http.client``) with ``docker
exec``: the request goes in on stdin, the answer comes back on stdout.

Example:
    >>> box = IsolatedContainer.run(docker_client, image, port=8080)  # doctest: +SKIP
    >>> box.request("GET", "/ping").status_code  # doctest: +SKIP
    200
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
from typing import Any, Protocol

import httpx

# Runs inside the container: stdin is one JSON line (method, path, headers, timeout, port)
# and then the body; stdout is one JSON line (status, headers or error) and then the body.
RELAY = r"""
import http.client, json, socket, sys
head = json.loads(sys.stdin.buffer.readline())
body = sys.stdin.buffer.read()
try:
    c = http.client.HTTPConnection("127.0.0.1", head["port"], timeout=head["timeout"])
    c.request(head["method"], head["path"], body=body or None, headers=head["headers"])
    r = c.getresponse()
    data = r.read()
    sys.stdout.buffer.write(json.dumps({"status": r.status,
                                        "headers": r.getheaders()}).encode() + b"\n")
    sys.stdout.buffer.write(data)
except (socket.timeout, TimeoutError):
    sys.stdout.buffer.write(b'{"error": "timeout"}\n')
except OSError as exc:
    sys.stdout.buffer.write(json.dumps({"error": "unreachable",
                                        "detail": repr(exc)}).encode() + b"\n")
"""


class ContainerUnreachable(Exception):
    """Nothing listens in the container (yet), or the container is gone."""


class ContainerTimeout(Exception):
    """The server in the container did not answer within the request's timeout."""


class Box(Protocol):
    """What the doubles need of a running server: is it alive, ask it, stop it."""

    def running(self) -> bool: ...

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                body: bytes = b"", timeout: float = 60.0) -> httpx.Response: ...

    def logs(self, tail: int = 30) -> str: ...

    def remove(self) -> None: ...


class LocalProcess:
    """A server process started by a double (``python -m mlem_lib.serve.container``),
    listening on ``127.0.0.1:port``; its output goes to ``log``."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: str) -> None:
        self.proc = proc
        self.port = port
        self.log = log

    def running(self) -> bool:
        return self.proc.poll() is None

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                body: bytes = b"", timeout: float = 60.0) -> httpx.Response:
        try:
            return httpx.request(method, f"http://127.0.0.1:{self.port}{path}",
                                 headers=headers, content=body, timeout=timeout,
                                 trust_env=False)
        except httpx.TimeoutException as exc:
            raise ContainerTimeout(str(exc)) from exc
        except httpx.TransportError as exc:
            raise ContainerUnreachable(str(exc)) from exc

    def logs(self, tail: int = 30) -> str:
        with contextlib.suppress(OSError), open(self.log, errors="replace") as f:
            return "".join(f.readlines()[-tail:])
        return ""

    def remove(self) -> None:
        """Stop the process we started, by its PID: SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_entrypoint(env: dict[str, str], port: int, log: str, *args: str) -> LocalProcess:
    """Run the generated images' entrypoint as a local process with ``env``."""
    import sys

    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlem_lib.serve.container", *args],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    return LocalProcess(proc, port, log)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without settings or secrets a server could pick up."""
    import os

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLEM_", "SAGEMAKER_", "HEROKU_", "AWS_")) and k != "PORT"}
    env.update(extra)
    return env


class IsolatedContainer:
    """One container on ``network_mode="none"`` and the port its server should listen on."""

    def __init__(self, container: Any, port: int) -> None:
        self.container = container
        self.port = port

    @classmethod
    def run(cls, docker_client: Any, image: str, *, port: int, **kwargs: Any
            ) -> IsolatedContainer:
        """Start ``image`` detached with no network but its own loopback."""
        container = docker_client.containers.run(image, detach=True, network_mode="none",
                                                 **kwargs)
        return cls(container, port)

    def running(self) -> bool:
        try:
            self.container.reload()
        except Exception:  # removed
            return False
        return str(self.container.status) not in ("exited", "dead", "removing")

    def logs(self, tail: int = 30) -> str:
        with contextlib.suppress(Exception):
            return str(self.container.logs(tail=tail).decode(errors="replace"))
        return ""

    def remove(self) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.container.remove(force=True)

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                body: bytes = b"", timeout: float = 60.0) -> httpx.Response:
        """Send one HTTP request to the server inside; return its answer.

        Raises:
            ContainerUnreachable: connection refused, or the container is not running.
            ContainerTimeout: no answer within ``timeout`` seconds.
        """
        head = {"method": method, "path": path, "headers": dict(headers or {}),
                "timeout": timeout, "port": self.port}
        out = self._exec(json.dumps(head).encode() + b"\n" + body, timeout + 30)
        line, _, data = out.partition(b"\n")
        try:
            meta = json.loads(line)
        except ValueError:
            raise ContainerUnreachable(f"relay failed: {out[:300]!r}") from None
        if meta.get("error") == "timeout":
            raise ContainerTimeout(f"no answer within {timeout:g}s")
        if "error" in meta:
            raise ContainerUnreachable(str(meta.get("detail")))
        return httpx.Response(meta["status"], headers=meta["headers"], content=data)

    def _exec(self, stdin: bytes, timeout: float) -> bytes:
        from docker.utils.socket import frames_iter

        api = self.container.client.api
        try:
            exec_id = api.exec_create(self.container.id, ["python3", "-c", RELAY],
                                      stdin=True, stdout=True, stderr=False)["Id"]
            sock = api.exec_start(exec_id, socket=True)
        except Exception as exc:  # container stopped or removed
            raise ContainerUnreachable(f"cannot exec in the container: {exc}") from exc
        raw = getattr(sock, "_sock", sock)
        try:
            raw.settimeout(timeout)
            raw.sendall(stdin)
            raw.shutdown(socket.SHUT_WR)
            chunks = [data for stream, data in frames_iter(sock, tty=False) if stream == 1]
        except OSError as exc:
            raise ContainerUnreachable(f"relay connection failed: {exc}") from exc
        finally:
            sock.close()
        return b"".join(chunks)
