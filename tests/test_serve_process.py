"""``mlem serve`` as a process: SIGTERM at any moment stops it, and the supervisor of
``--workers N`` holds no model (issue 12, item 15)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _wait_for_line(server, text: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.output():
        assert server.proc.poll() is None, server.output()
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.005)


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_sigterm_right_after_start_stops_the_server(start_server, saved_kinds, delay):
    """The signal lands while uvicorn is still starting (after the model loaded)."""
    server = start_server(saved_kinds["list"], wait=False)
    _wait_for_line(server, "serving ")
    time.sleep(delay)
    os.kill(server.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0, server.output()


def test_sigterm_while_the_model_loads_stops_the_server(start_server, saved_kinds):
    server = start_server(saved_kinds["list"], wait=False)
    time.sleep(0.2)
    os.kill(server.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM)


def test_workers_supervisor_does_not_load_the_model(start_server, tmp_path):
    import mlem_lib.api as mlem
    from tests.helpers.localmodels import LoadRecorder

    loads = tmp_path / "loads.txt"
    mlem.save(LoadRecorder(str(loads)), str(tmp_path / "rec"), sample_data=[1.0])
    server = start_server(str(tmp_path / "rec"), "--workers", "2")
    for _ in range(4):
        r = httpx.post(f"{server.url}/predict", json={"data": [2.0]}, timeout=30)
        assert r.status_code == 200 and r.json() == [2.0]
    pids = {int(line) for line in Path(loads).read_text().split()}
    assert pids, "the workers load the model"
    assert server.pid not in pids, "the supervisor unpickled the model"
    os.kill(server.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0


def test_workers_supervisor_still_refuses_a_tampered_model(tmp_path):
    import subprocess
    import sys

    import mlem_lib.api as mlem
    from tests.conftest import REPO_ROOT

    mlem.save(lambda xs: xs, str(tmp_path / "m"), sample_data=[1.0])
    body = (tmp_path / "m").read_bytes()
    (tmp_path / "m").write_bytes(body[:-1] + bytes([body[-1] ^ 1]))
    out = subprocess.run([sys.executable, "-m", "mlem_lib.cli", "serve", str(tmp_path / "m"),
                          "--workers", "2", "--port", "0"], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and "modified" in out.stderr


def test_workers_that_cannot_load_the_model_stop_the_command_with_one_line(tmp_path):
    """Not a supervisor that restarts failing workers for ever and then exits 0."""
    import subprocess
    import sys

    import mlem_lib.api as mlem
    from tests.conftest import REPO_ROOT
    from tests.helpers.localmodels import Unrestorable

    mlem.save(Unrestorable(), str(tmp_path / "m"), sample_data=[1.0])
    out = subprocess.run([sys.executable, "-m", "mlem_lib.cli", "serve", str(tmp_path / "m"),
                          "--workers", "2", "--port", "0"], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "cannot load" in out.stderr and "this model cannot be restored" in out.stderr
    assert out.stderr.rstrip().splitlines()[-1].startswith("error: the workers could not load")
    assert "Traceback" not in out.stderr
