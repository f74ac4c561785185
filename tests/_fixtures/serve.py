"""Fixtures for the serve tests (loaded by conftest.py): saved models of every data kind
and real ``mlem serve`` processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, free_port, skip_or_fail


@dataclass
class ServerProcess:
    """A server started for a test; ``url`` is ready when the fixture hands it over."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path,
               timeout: float = 60.0) -> None:
    """Poll ``/health`` until it answers 200; fail with the server's log if it dies."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n"
                                 f"{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"server at {url} not ready after {timeout}s:\n"
                         f"{log.read_text(errors='replace')}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``mlem serve`` (or any argv) for real; every process is stopped in teardown.

    Call as ``start_server(model_path, "--auth-token", "x", env={...})`` or with
    ``argv=[...]`` to run another command (e.g. the container entrypoint) that listens
    on the port given in ``env``.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(model: str | None = None, *args: str, env: dict[str, str] | None = None,
              argv: list[str] | None = None, port: int | None = None,
              wait: bool = True) -> ServerProcess:
        port = port or free_port()
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("MLEM_AUTH_TOKEN", "PORT", "SAGEMAKER_BIND_TO_PORT")}
        full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
        if argv is None:
            argv = [sys.executable, "-m", "mlem_lib.cli", "serve", str(model),
                    "--host", "127.0.0.1", "--port", str(port), *args]
        log = tmp_path / f"server-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=full_env, stdout=out,
                                    stderr=subprocess.STDOUT)
        started.append(proc)
        server = ServerProcess(proc=proc, url=f"http://127.0.0.1:{port}", log=log)
        if wait:
            wait_ready(server.url, proc, log)
        return server

    yield start
    for proc in started:
        stop(proc)


# --- models of every data kind ------------------------------------------------------

@pytest.fixture(scope="session")
def saved_kinds(tmp_path_factory: pytest.TempPathFactory, iris, iris_lr) -> dict[str, str]:
    """Saved models whose arguments cover every data kind; name -> path.

    * ``ndarray``: LogisticRegression fitted on an (n, 4) float array;
    * ``list``: a function doubling a list of floats;
    * ``dict``: a function of {"a": int, "b": str};
    * ``series``: a function summing a float Series;
    * ``scalar``: a function squaring an int;
    * ``boom``: raises ValueError for negative input (model errors);
    * ``slow``: sleeps ``x`` seconds and returns x (graceful shutdown).
    """
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import mlem_lib.api as mlem

    root = tmp_path_factory.mktemp("serve_models")
    X, y = iris
    arr = X.to_numpy()
    out: dict[str, str] = {}

    def save(name: str, obj: object, sample: object) -> None:
        path = str(root / name)
        mlem.save(obj, path, sample_data=sample)
        out[name] = path

    save("ndarray", LogisticRegression(max_iter=500).fit(arr, y), arr)

    def double(xs: list[float]) -> list[float]:
        return [x * 2 for x in xs]

    def describe(d: dict) -> str:
        return f"{d['b']}:{d['a'] + 1}"

    def total(s: pd.Series) -> float:
        return float(s.sum())

    def square(x: int) -> int:
        return x * x

    def boom(xs: list[float]) -> list[float]:
        if any(x < 0 for x in xs):
            raise ValueError("negative input")
        return xs

    def slow(xs: list[float]) -> list[float]:
        import time as _time

        _time.sleep(xs[0])
        return xs

    save("list", double, [1.0, 2.0, 3.0])
    save("dict", describe, {"a": 1, "b": "x"})
    save("series", total, pd.Series([1.0, 2.0], name="v"))
    save("scalar", square, 3)
    save("boom", boom, [1.0, 2.0])
    save("slow", slow, [0.0])
    return out


def side_venv_python() -> Path | None:
    """The side venv with real MLEM 0.4.14 (env MLEM_SIDE_VENV or <repo>/.venv-mlem)."""
    root = Path(os.environ.get("MLEM_SIDE_VENV") or REPO_ROOT / ".venv-mlem")
    python = root / "bin" / "python"
    return python if python.exists() else None


@pytest.fixture(scope="session")
def mlem_python() -> Path:
    """The side venv's python; skip (fail under CI=true) when it was not created."""
    python = side_venv_python()
    if python is None:
        reason = ("real MLEM side venv missing: run scripts/mlem-side-venv.sh "
                  "(or set MLEM_SIDE_VENV)")
        skip_or_fail(reason)
    return python


@pytest.fixture(scope="module")
def lr_server(saved_lr, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``mlem serve`` of the iris LogisticRegression with auth token ``client-token``,
    shared by a test module."""
    port = free_port()
    log = tmp_path_factory.mktemp("lr_server") / "server.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "SAGEMAKER_BIND_TO_PORT")}
    env.update({"PYTHONUNBUFFERED": "1", "MLEM_AUTH_TOKEN": "client-token"})
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlem_lib.cli", "serve", saved_lr,
                                 "--host", "127.0.0.1", "--port", str(port)],
                                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        server = ServerProcess(proc=proc, url=f"http://127.0.0.1:{port}", log=log)
        wait_ready(server.url, proc, log)
        yield server
    finally:
        stop(proc)
