"""What a deployment runs, stored as JSON next to its declaration or at an fsspec URL.

Writes are atomic (a temporary file renamed over the old one, or a single
object PUT on object stores) so a crash never leaves half a state file. Changes
hold the deployment's lock: ``flock`` on a ``.lock`` file next to a local state
file (the kernel frees it when its holder dies, so a killed run never blocks the
next one, and two runs can never both take it over), a lock file naming the
owner's host and PID on object stores.

Example:
    >>> store = StateStore("/tmp/demo.state.json")  # doctest: +SKIP
    >>> with store.lock():  # doctest: +SKIP
    ...     store.save(DeploymentState(name="demo", type="local", model_hash="ab"))
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from mlem_lib.deploy.smoke import SmokeRequest
from mlem_lib.errors import DeploymentError, DeploymentLockedError
from mlem_lib.processes import pid_alive

__all__ = ["DeploymentState", "DeploymentStatus", "Rollout", "StateStore", "pid_alive"]

HISTORY_LIMIT = 500
"""Rollouts a state file keeps (the oldest are dropped)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER/LOGNAME: a bare container
        return os.environ.get("USER") or str(os.getuid())


class Rollout(BaseModel):
    """One change of what a deployment runs: what, when and by whom (the audit trail).

    Attributes:
        at: ISO timestamp.
        action: ``rollout``, ``rollback`` or ``failed rollout`` (rolled back).
        model_hash: the model that ran afterwards (for a failed rollout: the one tried).
        model: the reference or path deployed (``rf@v1.2.0``, ``rf#prod``, a path).
        version: the registry version it resolved to.
        user: the user name of the process that did it.
        host: the machine it ran on.
    """

    at: str = Field(default_factory=_now)
    action: str = "rollout"
    model_hash: str
    model: str | None = None
    version: str | None = None
    user: str | None = Field(default_factory=_user)
    host: str | None = Field(default_factory=socket.gethostname)


class DeploymentState(BaseModel):
    """What is running: written after every successful rollout.

    Attributes:
        name: the deployment's name.
        type: ``local``, ``heroku`` or ``sagemaker``.
        model_hash: ``meta.model_hash`` of the deployed model (what ``run`` compares).
        model_path: where the model was deployed from.
        image: image reference, when the target runs one.
        image_id: the image's id (``sha256:...``).
        url: where the model answers.
        target: target-specific ids (PID, container id, app name, endpoint config...).
        deployed_at: ISO timestamp of the rollout.
        smoke: the smoke request that passed (a rollback to this version replays it).
        previous: the previous good state (its own ``previous`` is dropped).
        history: every rollout, rollback and failed rollout, oldest first.
    """

    name: str
    type: str
    model_hash: str
    model_path: str | None = None
    image: str | None = None
    image_id: str | None = None
    url: str | None = None
    target: dict[str, Any] = Field(default_factory=dict)
    deployed_at: str = Field(default_factory=_now)
    smoke: SmokeRequest | None = None
    previous: DeploymentState | None = None
    history: list[Rollout] = Field(default_factory=list)

    def with_previous(self, previous: DeploymentState | None) -> DeploymentState:
        """This state with ``previous`` (flattened to one level) recorded."""
        prev = previous.model_copy(update={"previous": None, "history": []}) \
            if previous else None
        return self.model_copy(update={"previous": prev})

    def with_history(self, before: DeploymentState | None, record: Rollout) -> DeploymentState:
        """This state with the history of ``before`` plus ``record``."""
        history = [*(before.history if before is not None else []), record]
        return self.model_copy(update={"history": history[-HISTORY_LIMIT:]})


class DeploymentStatus(BaseModel):
    """The answer of ``status``: what is recorded and whether it answers now."""

    name: str
    type: str
    deployed: bool
    healthy: bool
    url: str | None = None
    model_hash: str | None = None
    detail: str = ""


class StateStore:
    """Load, save and lock the state file of one deployment.

    Args:
        url: a local path or an fsspec URL of the ``.state.json`` file.
    """

    def __init__(self, url: str) -> None:
        from mlem_lib.storage import get_fs, is_local

        self.url = url
        self.fs, self.path = get_fs(url)
        self.local = is_local(self.fs)
        self.lock_path = self.path + ".lock"

    def load(self) -> DeploymentState | None:
        """The recorded state, or ``None`` when nothing is deployed."""
        try:
            text = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return None
        try:
            return DeploymentState.model_validate_json(text)
        except ValueError as exc:
            raise DeploymentError(f"state file {self.url} is corrupt: {exc}") from exc

    def save(self, state: DeploymentState) -> None:
        """Write the state atomically."""
        body = state.model_dump_json(indent=2).encode()
        if self.local:
            directory = os.path.dirname(self.path) or "."
            os.makedirs(directory, exist_ok=True)
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        else:
            self.fs.pipe_file(self.path, body)

    def delete(self) -> None:
        """Forget the state (after a removal)."""
        with suppress(FileNotFoundError):
            self.fs.rm_file(self.path)

    # --- locking -------------------------------------------------------------
    def _owner(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}

    def _read_lock(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.fs.cat_file(self.lock_path))
        except FileNotFoundError:
            return None
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _is_stale(self, owner: dict[str, Any] | None) -> bool:
        if not owner or owner.get("host") != socket.gethostname():
            return False  # another machine's lock: only it knows whether it is alive
        return not pid_alive(int(owner.get("pid", 0)))

    def _acquire_local(self) -> int | None:
        """The descriptor that holds the lock, or ``None`` when someone else holds it.

        The kernel's ``flock`` decides, atomically, and releases it when the holder dies,
        so a lock file left by a killed run is simply free again: there is no "is it
        stale?" check that two runs could both pass. A holder unlinks the file before it
        lets go; a run that locked the unlinked file sees that the path now names another
        file (or none) and tries again, so two runs can never hold two different files.
        """
        import fcntl

        os.makedirs(os.path.dirname(self.lock_path) or ".", exist_ok=True)
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                current = os.stat(self.lock_path)
            except FileNotFoundError:
                current = None
            if current is None or not os.path.samestat(os.fstat(fd), current):
                os.close(fd)  # released and unlinked while we waited: lock the new file
                continue
            with os.fdopen(os.dup(fd), "rb") as f:
                text = f.read()
            try:
                owner = json.loads(text) if text.strip() else None
            except ValueError:
                owner = None
            if isinstance(owner, dict) and owner.get("host") not in (None,
                                                                     socket.gethostname()):
                os.close(fd)  # written by a run on another machine: only it can release it
                return None
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(self._owner()).encode(), 0)
            return fd

    def _release_local(self, fd: int) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self.lock_path)  # before letting go: see _acquire_local
        os.close(fd)

    def _acquire_remote(self) -> bool:
        # Object stores have no locks: take over a stale lock, write, read back (best effort).
        owner = self._read_lock()
        if owner is not None:
            if not self._is_stale(owner):
                return False
            with suppress(FileNotFoundError):
                self.fs.rm_file(self.lock_path)
        body = json.dumps(self._owner()).encode()
        if self.fs.exists(self.lock_path):
            return False
        self.fs.pipe_file(self.lock_path, body)
        return self._read_lock() == json.loads(body)

    @contextmanager
    def lock(self, timeout: float = 0.0) -> Iterator[None]:
        """Hold the deployment's lock for the duration of the block.

        Local state files are locked with ``flock`` (atomic; a killed holder's lock is
        free at once); on object stores the lock is a file holding the owner's host and
        PID, taken over when that process is gone (best effort: an object store cannot
        create a file only if it is missing).

        Args:
            timeout: seconds to wait for another run to finish (0: fail at once).

        Raises:
            DeploymentLockedError: another live process holds the lock.
        """
        deadline = time.monotonic() + timeout
        while True:
            fd = self._acquire_local() if self.local else None
            if fd is not None or (not self.local and self._acquire_remote()):
                break
            if time.monotonic() >= deadline:
                owner = self._read_lock()
                who = f"PID {owner.get('pid')} on {owner.get('host')}" if owner else "another run"
                raise DeploymentLockedError(
                    f"deployment is locked by {who} since {(owner or {}).get('since', '?')} "
                    f"(lock file {self.lock_path}); wait for it (--lock-timeout), or remove "
                    "the file if it names a machine whose run is gone")
            time.sleep(0.1)
        try:
            yield
        finally:
            if fd is not None:
                self._release_local(fd)
            else:
                with suppress(FileNotFoundError):
                    self.fs.rm_file(self.lock_path)
