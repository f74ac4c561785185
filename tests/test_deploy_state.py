"""The state file: atomic writes, the lock, stale-lock detection, fsspec URLs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

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



_RACER = """
import os, sys, time
from pathlib import Path
from mlem_lib.deploy.state import StateStore
from mlem_lib.errors import DeploymentLockedError
path, folder, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
log = str(folder / "holders.log")
(folder / f"ready-{os.getpid()}").touch()
for k in range(rounds):
    go = str(folder / f"go-{k}")
    while not os.path.exists(go):  # spin: every racer leaves at the same moment
        pass
    try:
        with StateStore(path).lock(timeout=0):
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{k} in {os.getpid()}\\n".encode())
            time.sleep(0.02)
            os.write(fd, f"{k} out {os.getpid()}\\n".encode())
            os.close(fd)
    except DeploymentLockedError:
        pass
    (folder / f"done-{k}-{os.getpid()}").touch()
"""


def _wait_for(folder, pattern: str, count: int, procs) -> None:
    deadline = time.monotonic() + 60
    while len(list(folder.glob(pattern))) < count:
        assert time.monotonic() < deadline, f"the racers did not reach {pattern}"
        assert all(p.poll() is None for p in procs), "a racer died"
        time.sleep(0.005)


def test_racing_takeovers_of_a_stale_lock_never_both_hold_it(tmp_path):
    """Issue 12 item 8: runs that find the same stale lock take it over one at a time.

    Each round leaves a lock of a dead process behind and lets the racers find it at the
    same moment; the log of who held the lock must never show two holders at once.
    """
    path = tmp_path / "d.state.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(),
                        "since": "then"})
    racers, rounds = 4, 25
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(path), str(tmp_path),
                               str(rounds)]) for _ in range(racers)]
    try:
        _wait_for(tmp_path, "ready-*", racers, procs)
        for k in range(rounds):
            (tmp_path / "d.state.json.lock").write_text(stale)
            (tmp_path / f"go-{k}").touch()
            _wait_for(tmp_path, f"done-{k}-*", racers, procs)
        for p in procs:
            assert p.wait(30) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    events = (tmp_path / "holders.log").read_text().splitlines()
    assert events, "nobody ever took the stale lock over"
    for enter, leave in zip(events[::2], events[1::2], strict=True):
        k, what, pid = enter.split()
        assert what == "in" and leave == f"{k} out {pid}", \
            f"two runs held the lock at once: {events}"
    assert {e.split()[0] for e in events} == {str(k) for k in range(rounds)}  # taken each round
