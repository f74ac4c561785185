"""The state file: atomic writes, the lock, stale-lock detection, fsspec URLs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from mlem_lib.deploy.state import DeploymentState, StateStore, pid_alive
from mlem_lib.errors import DeploymentError, DeploymentLockedError


def _state(h: str = "aa") -> DeploymentState:
    return DeploymentState(name="d", type="local", model_hash=h, url="http://127.0.0.1:1")


@pytest.mark.parametrize("where", ["local", "memory"])
def test_save_load_delete(tmp_path, where):
    url = str(tmp_path / "sub" / "d.state.json") if where == "local" \
        else f"memory://states-{os.getpid()}/d.state.json"
    store = StateStore(url)
    assert store.load() is None
    first = _state("aa")
    store.save(first)
    second = _state("bb").with_previous(first.with_previous(_state("00")))
    store.save(second)
    loaded = store.load()
    assert loaded == second
    assert loaded.previous is not None and loaded.previous.previous is None  # one level kept
    store.delete()
    assert store.load() is None
    store.delete()


def test_atomic_write_leaves_no_temp_files(tmp_path):
    store = StateStore(str(tmp_path / "d.state.json"))
    for h in ("a", "b", "c"):
        store.save(_state(h))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.state.json"]


def test_corrupt_state_is_an_error(tmp_path):
    path = tmp_path / "d.state.json"
    path.write_text("{not json")
    with pytest.raises(DeploymentError, match="corrupt"):
        StateStore(str(path)).load()


def test_lock_is_exclusive_and_released(tmp_path, lock_holder):
    path = str(tmp_path / "d.state.json")
    holder = lock_holder(path)
    with pytest.raises(DeploymentLockedError, match=f"PID {holder.pid}"), \
            StateStore(path).lock():
        pass
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(10)
    with StateStore(path).lock(timeout=5):
        assert os.path.exists(path + ".lock")
    assert not os.path.exists(path + ".lock")


def test_lock_waits_for_timeout(tmp_path, lock_holder):
    path = str(tmp_path / "d.state.json")
    lock_holder(path)
    with pytest.raises(DeploymentLockedError), StateStore(path).lock(timeout=0.5):
        pass


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    path = tmp_path / "d.state.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    assert not pid_alive(pid)
    (tmp_path / "d.state.json.lock").write_text(
        json.dumps({"pid": pid, "host": socket.gethostname(), "since": "then"}))
    with StateStore(str(path)).lock():
        owner = json.loads((tmp_path / "d.state.json.lock").read_text())
        assert owner["pid"] == os.getpid()


def test_lock_of_another_host_is_respected(tmp_path):
    path = tmp_path / "d.state.json"
    (tmp_path / "d.state.json.lock").write_text(
        json.dumps({"pid": 1, "host": "some-other-machine", "since": "then"}))
    with pytest.raises(DeploymentLockedError, match="some-other-machine"), \
            StateStore(str(path)).lock():
        pass
