"""One writer at a time per saved object, and telling whether a writer is still alive.

Saves to the same path are serialised with a lock next to the ``.mlem`` file:

* local paths: ``fcntl.flock`` on ``.<name>.mlem.lock``; the kernel releases it when the
  writer dies, so a killed save never blocks the next one;
* object stores (S3, memory...): the lock object is created with an exclusive create
  (S3's ``If-None-Match: *``); a lock whose writer is gone (same host, PID not alive)
  or that is older than ``STALE_LOCK_SECONDS`` is taken over.

Temporary files and locks carry an *owner tag*, ``<host>-<pid>``, so that the next
writer can tell files of a dead writer from those of a live one.

Example:
    >>> fs, path = __import__("mlem_lib.storage").storage.get_fs("memory://lock-demo/m.mlem")
    >>> with writer_lock(fs, path):
    ...     fs.exists(lock_path(path))
    True
    >>> fs.exists(lock_path(path))
    False
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlem_lib.errors import ConcurrentWriteError

LOCK_TIMEOUT_SECONDS = 600.0
"""How long a save waits for another save of the same path before giving up."""
STALE_LOCK_SECONDS = 3600.0
"""An object-store lock older than this is taken over even if its owner is elsewhere."""
_POLL = 0.05

_OWNER_RE = re.compile(r"(?P<host>[A-Za-z0-9._]+)-(?P<pid>\d+)")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40] or "host"


def owner_tag() -> str:
    """``<host>-<pid>`` of this process (host without dashes, so the tag parses back).

    Example:
        >>> parse_owner(owner_tag()) == (_host(), os.getpid())
        True
    """
    return f"{_host()}-{os.getpid()}"


def parse_owner(text: str) -> tuple[str, int] | None:
    """(host, pid) from a string holding an owner tag, or None."""
    m = _OWNER_RE.search(text)
    return (m["host"], int(m["pid"])) if m else None


def owner_gone(host: str, pid: int) -> bool:
    """True when the owner ran on this host and its process no longer exists."""
    from mlem_lib.processes import pid_alive

    return host == _host() and not pid_alive(pid)


def lock_path(meta_path: str) -> str:
    """``<dir>/.<name>.mlem.lock`` for ``<dir>/<name>.mlem``."""
    head, tail = posixpath.split(meta_path)
    return posixpath.join(head, f".{tail}.lock")


@contextmanager
def writer_lock(fs: Any, meta_path: str, timeout: float = LOCK_TIMEOUT_SECONDS
                ) -> Iterator[None]:
    """Hold the lock of the object whose metadata is ``meta_path`` (see the module doc).

    Raises:
        ConcurrentWriteError: another writer held it for ``timeout`` seconds.
    """
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):  # not storage.is_local: storage imports this module
        with _local_lock(lock_path(meta_path), meta_path, timeout):
            yield
    else:
        with _object_lock(fs, lock_path(meta_path), meta_path, timeout):
            yield


def _busy(meta_path: str, holder: str, timeout: float) -> ConcurrentWriteError:
    return ConcurrentWriteError(
        f"another save to {meta_path[: -len('.mlem')]} is running ({holder or 'unknown'}) "
        f"and did not finish within {timeout:g} s; try again when it is done")


@contextmanager
def _local_lock(path: str, meta_path: str, timeout: float) -> Iterator[None]:
    import fcntl

    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                        raise _busy(meta_path, holder, timeout) from None
                    time.sleep(_POLL)
            # the previous holder unlinks the file before unlocking: make sure we locked
            # the file that is at the path now, not an orphan
            mine = os.fstat(fd)
            try:
                now = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_ino, now.st_dev) == (mine.st_ino, mine.st_dev):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {owner_tag()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _read_lock(fs: Any, path: str) -> dict[str, Any] | None:
    try:
        data = json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _stale(info: dict[str, Any]) -> bool:
    owner = parse_owner(str(info.get("owner", "")))
    if owner is not None and owner_gone(*owner):
        return True
    created = info.get("created")
    return not isinstance(created, int | float) or time.time() - created > STALE_LOCK_SECONDS


@contextmanager
def _object_lock(fs: Any, path: str, meta_path: str, timeout: float) -> Iterator[None]:
    token = f"{owner_tag()}-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"owner": token, "created": time.time()}).encode()
    deadline = time.monotonic() + timeout
    held = True
    while True:
        try:
            with fs.open(path, "xb") as f:
                f.write(body)
            break
        except FileExistsError:
            info = _read_lock(fs, path)
            if info is None:
                continue
            if _stale(info):
                with contextlib.suppress(FileNotFoundError):
                    fs.rm(path)
                continue
            if time.monotonic() > deadline:
                raise _busy(meta_path, str(info.get("owner", "")), timeout) from None
            time.sleep(_POLL * 4)
        except (ValueError, NotImplementedError):
            held = False  # this filesystem cannot create exclusively: no lock
            break
    try:
        yield
    finally:
        if held:
            info = _read_lock(fs, path)
            if info is not None and info.get("owner") == token:
                with contextlib.suppress(FileNotFoundError):
                    fs.rm(path)
