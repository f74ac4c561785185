"""Processes on this machine: is one alive, is it still the one we started, stop it.

Used by the deployment lock and the local target (:mod:`mlem_lib.deploy`) and by the
save lock (:mod:`mlem_lib.savelock`). A PID alone can be reused by an unrelated process
once the first one has exited, so whoever records a PID to stop it later also records
its start time (:func:`start_time`) and checks both (:func:`same_process`).

Example:
    >>> import os
    >>> pid_alive(os.getpid()), same_process(os.getpid(), start_time(os.getpid()))
    (True, True)
    >>> same_process(os.getpid(), "0")
    False
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

__all__ = ["pid_alive", "same_process", "start_time", "stop_pid"]


def pid_alive(pid: int) -> bool:
    """True when a process with that PID exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``None`` where unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def same_process(pid: int, started: str | None) -> bool:
    """True when ``pid`` runs and is the process that started at ``started``."""
    return pid_alive(pid) and (not started or start_time(pid) in (None, started))


def stop_pid(pid: int, started: str | None = None, timeout: float = 30.0) -> None:
    """SIGTERM the process group of ``pid``, SIGKILL after ``timeout``; reap our children.

    Does nothing when ``pid`` is gone or is not the process that started at ``started``.
    """
    if not same_process(pid, started):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not pid_alive(pid):
                return
            time.sleep(0.05)
