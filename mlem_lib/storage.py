"""Files through fsspec: locating objects, hashing, safe artifact paths, atomic saves.

A save writes two files, the artifact and the ``.mlem`` metadata. To make the
pair atomic without a directory rename, the new metadata is first written
completely to ``<name>.mlem.pending`` (the intent record), then the artifact is
moved into place, then the pending file replaces ``<name>.mlem``. Saves to one
path hold a writer lock (:mod:`mlem_lib.savelock`), so only one of them uses the
pending file at a time.

Readers never write: a reader that finds a pending file whose artifacts are the ones
on disk (a save killed between the two moves) reads that pair instead of the
``.mlem`` file, and the next writer, under the lock, finishes or discards it and
deletes the temporary files of writers that are gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from mlem_lib.errors import (
    ArtifactIntegrityError,
    ConcurrentWriteError,
    MetadataError,
    ObjectNotFoundError,
    StorageError,
    UnsafePathError,
)

META_SUFFIX = ".mlem"
PENDING_SUFFIX = ".pending"
CHUNK = 4 * 1024 * 1024

#: Test hook (a failpoint): when set, called with the name of each step of a save right
#: after it is done: ``"artifacts-written"`` (at temporary paths), ``"pending-written"``,
#: ``"artifact-moved"`` (once per artifact), ``"metadata-moved"``. A test stops a save
#: exactly between two steps with it (tests/test_save_failpoints.py); never set otherwise.
save_step: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if save_step is not None:
        save_step(name)


def get_fs(url: str) -> tuple[Any, str]:
    """Return the fsspec filesystem and the path inside it for ``url``.

    Example:
        >>> fs, path = get_fs("memory://models/rf")
        >>> path
        '/models/rf'
    """
    import fsspec.core

    if "\0" in url:
        raise UnsafePathError(f"path {url!r} contains a NUL character")
    if url.startswith(("s3://", "s3a://")):
        from mlem_lib.extras import need

        need("aws", "reading and writing s3:// paths", "s3fs")
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise StorageError(f"cannot open {url}: {exc}") from exc
    return fs, path


def is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def split_meta_path(url: str) -> tuple[str, str]:
    """Return (``<object path>``, ``<object path>.mlem``) for either spelling."""
    if url.endswith(META_SUFFIX):
        return url[: -len(META_SUFFIX)], url
    return url, url + META_SUFFIX


def resolve_artifact(meta_path: str, uri: str, fs: Any = None) -> str:
    """The path of an artifact, refusing URIs that leave the ``.mlem`` file's folder.

    With a local ``fs`` the real path is checked too: an artifact that is, or is reached
    through, a symlink pointing outside the folder is refused, and the resolved real
    path is returned so that nothing follows the link again later.

    Raises:
        UnsafePathError: for absolute paths, URLs, ``..`` components and symlinks that
            lead out of the folder.

    Example:
        >>> resolve_artifact("/models/rf.mlem", "rf")
        '/models/rf'
    """
    if not uri or "://" in uri or uri.startswith(("/", "\\")) or (len(uri) > 1 and uri[1] == ":"):
        raise UnsafePathError(f"artifact uri {uri!r} must be a relative path inside the "
                              "model's folder")
    if "\0" in uri:
        raise UnsafePathError(f"artifact uri {uri!r} contains a NUL character")
    parts = uri.replace("\\", "/").split("/")
    if any(p == ".." for p in parts):
        raise UnsafePathError(f"artifact uri {uri!r} escapes the model's folder")
    path = posixpath.join(posixpath.dirname(meta_path), *[p for p in parts if p not in ("", ".")])
    if fs is None or not is_local(fs):
        return path
    folder = os.path.realpath(os.path.dirname(meta_path) or ".")
    real = os.path.realpath(path)
    if os.path.commonpath([folder, real]) != folder:
        raise UnsafePathError(f"artifact uri {uri!r} leads through a symlink to {real}, "
                              f"outside the model's folder {folder}")
    return real


def hasher(algorithm: str) -> Any:
    """A new hash object for a fixed-length algorithm named in metadata.

    Raises:
        MetadataError: an unknown algorithm, or one without a fixed digest length
            (``shake_128``, ``shake_256``).

    Example:
        >>> hasher("sha256").name
        'sha256'
    """
    try:
        h = hashlib.new(algorithm)
    except (ValueError, TypeError):
        h = None
    if h is None or h.digest_size == 0:
        raise MetadataError(f"unknown hash algorithm {algorithm!r} in the metadata (use one "
                            "of sha256, sha512, sha1, md5, blake2b...)")
    return h


def hash_file(fs: Any, path: str, algorithm: str = "sha256") -> tuple[str, int]:
    """Stream a file through a hash; return (hex digest, size)."""
    h, size = hasher(algorithm), 0
    with fs.open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def file_matches(fs: Any, path: str, *, size: int, digest: str, algorithm: str) -> bool:
    """Whether a file has the recorded size and hash (size first: it costs no read).

    Raises:
        FileNotFoundError: the file is missing.
    """
    if fs.size(path) != size:
        return False
    return hash_file(fs, path, algorithm)[0] == digest


class HashingWriter:
    """A write-only file wrapper that hashes and counts what passes through it."""

    def __init__(self, raw: IO[bytes], algorithm: str = "sha256") -> None:
        self.raw = raw
        self.hash = hasher(algorithm)
        self.size = 0

    def write(self, data: Any) -> int:
        # pickle protocol 5 hands over PickleBuffer objects for large arrays
        view = memoryview(data).cast("B")
        self.hash.update(view)
        self.size += view.nbytes
        self.raw.write(view)
        return view.nbytes

    def hexdigest(self) -> str:
        return str(self.hash.hexdigest())


def read_verified(fs: Any, path: str, *, size: int, digest: str, algorithm: str) -> bytes:
    """Read a whole artifact and check its size and hash before anyone unpickles it.

    Raises:
        ObjectNotFoundError: the artifact is missing.
        ArtifactIntegrityError: size or hash differ from the metadata.
    """
    try:
        actual_size = fs.size(path)
    except FileNotFoundError as exc:
        raise ObjectNotFoundError(f"artifact {path} is missing") from exc
    if actual_size != size:
        raise ArtifactIntegrityError(
            f"artifact {path} is {actual_size} bytes, metadata says {size}: the file is "
            "truncated or was replaced")
    with fs.open(path, "rb") as f:
        data = f.read()
    h = hasher(algorithm)
    h.update(data)
    if h.hexdigest() != digest:
        raise ArtifactIntegrityError(
            f"artifact {path} has {algorithm} {h.hexdigest()[:12]}..., metadata says "
            f"{digest[:12]}...: the file was modified")
    return bytes(data)


def _tmp_name(path: str) -> str:
    from mlem_lib.savelock import owner_tag

    head, tail = posixpath.split(path)
    return posixpath.join(head, f".{tail}.tmp-{owner_tag()}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_open(fs: Any, path: str) -> Iterator[IO[bytes]]:
    """Open ``path`` for writing so that readers see the old file or the whole new one.

    Example:
        >>> fs, p = get_fs("memory://atomic-demo.txt")
        >>> with atomic_open(fs, p) as f:
        ...     _ = f.write(b"hello")
        >>> fs.cat(p)
        b'hello'
    """
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with fs.open(tmp, "wb") as f:
            yield f
            if is_local(fs):
                f.flush()
                os.fsync(f.fileno())
        fs.mv(tmp, path)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise


def write_object(fs: Any, meta_path: str, artifacts: dict[str, Callable[[IO[bytes]], Any]],
                 render_meta: Callable[[dict[str, tuple[str, int]]], bytes],
                 algorithm: str = "sha256",
                 on_temp: Callable[[str, str], Any] | None = None,
                 describes_artifacts: Callable[[bytes], bool] | None = None) -> None:
    """Write artifacts and the ``.mlem`` file as one atomic unit, one writer at a time.

    Args:
        fs: the filesystem.
        meta_path: where the ``.mlem`` file goes.
        artifacts: artifact path -> function writing its bytes into a file object.
        render_meta: gets {artifact path: (hash, size)}, returns the ``.mlem`` bytes; the
            artifacts are still at their temporary paths then (see ``on_temp``).
        algorithm: hash algorithm.
        on_temp: called with (final path, temporary path) for each artifact.
        describes_artifacts: says whether ``.mlem`` bytes describe the artifacts on disk;
            used to finish a save that was killed between its two moves.

    Raises:
        ConcurrentWriteError: another save of the same path did not finish in time, or
            (object stores without exclusive create) replaced this one's metadata.
    """
    from mlem_lib.savelock import writer_lock

    parent = posixpath.dirname(meta_path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with writer_lock(fs, meta_path):
        recover_interrupted_save(fs, meta_path, list(artifacts), describes_artifacts)
        _write_pair(fs, meta_path, artifacts, render_meta, algorithm, on_temp)


def _write_pair(fs: Any, meta_path: str, artifacts: dict[str, Callable[[IO[bytes]], Any]],
                render_meta: Callable[[dict[str, tuple[str, int]]], bytes], algorithm: str,
                on_temp: Callable[[str, str], Any] | None) -> None:
    parent = posixpath.dirname(meta_path)
    temps: dict[str, str] = {}
    pending = meta_path + PENDING_SUFFIX
    try:
        digests: dict[str, tuple[str, int]] = {}
        for final, writer in artifacts.items():
            tmp = temps[final] = _tmp_name(final)
            if on_temp is not None:
                on_temp(final, tmp)
            with fs.open(tmp, "wb") as raw:
                out = HashingWriter(raw, algorithm)
                writer(out)  # type: ignore[arg-type]
                if is_local(fs):
                    raw.flush()
                    os.fsync(raw.fileno())
            digests[final] = (out.hexdigest(), out.size)
        _step("artifacts-written")
        body = render_meta(digests)
        with fs.open(pending, "wb") as f:
            f.write(body)
            if is_local(fs):
                f.flush()
                os.fsync(f.fileno())
        _step("pending-written")
        for final, tmp in temps.items():
            fs.mv(tmp, final)
            _step("artifact-moved")
        temps.clear()
        fs.mv(pending, meta_path)
        _step("metadata-moved")
        if is_local(fs):
            if parent:
                _fsync_dir(parent)
        elif fs.cat_file(meta_path) != body:
            raise ConcurrentWriteError(f"another writer replaced {meta_path} while this save "
                                       "finished; the path holds the other save")
    finally:
        for tmp in temps.values():
            if fs.exists(tmp):
                fs.rm(tmp)
        if temps and fs.exists(pending):
            fs.rm(pending)


def recover_interrupted_save(fs: Any, meta_path: str, artifact_paths: list[str],
                             describes_artifacts: Callable[[bytes], bool] | None) -> None:
    """Finish or discard a save killed between its moves, and delete dead writers' temp files.

    Only a writer holding the lock calls this: the pending file becomes the ``.mlem``
    file when it describes the artifacts on disk and the ``.mlem`` file does not.
    """
    pending = meta_path + PENDING_SUFFIX
    try:
        body = fs.cat_file(pending)
    except FileNotFoundError:
        body = None
    if body is not None:
        try:
            current: bytes | None = fs.cat_file(meta_path)
        except FileNotFoundError:
            current = None
        if (describes_artifacts is not None and describes_artifacts(body)
                and not (current is not None and describes_artifacts(current))):
            fs.mv(pending, meta_path)
        else:
            fs.rm(pending)
    for path in artifact_paths:
        sweep_stale_temps(path, fs=fs)


STALE_TEMP_SECONDS = 3600.0


def sweep_stale_temps(path: str, older_than: float = STALE_TEMP_SECONDS, *,
                      fs: Any = None) -> list[str]:
    """Delete temporary files that killed saves of ``path`` left behind.

    A temporary file goes when its writer is gone (it ran on this host and its PID is
    not alive), whatever its age, or when it is older than ``older_than`` seconds
    (writers on other hosts, files named by older versions). A save running right now
    in another process keeps its temporary file.

    Returns:
        The paths removed.
    """
    import time

    from mlem_lib.savelock import owner_gone, parse_owner

    if fs is None:
        fs, path = get_fs(path)
    head, tail = posixpath.split(path)
    prefix = f".{tail}.tmp-"
    try:
        names = [posixpath.basename(p.rstrip("/")) for p in fs.ls(head or ".", detail=False)]
    except FileNotFoundError:
        return []
    removed = []
    cutoff = time.time() - older_than
    for name in names:
        if not name.startswith(prefix):
            continue
        tmp = posixpath.join(head, name)
        owner = parse_owner(name[len(prefix):])
        with contextlib.suppress(OSError):
            if not (owner is not None and owner_gone(*owner)) and _mtime(fs, tmp) >= cutoff:
                continue
            fs.rm(tmp)
            removed.append(tmp)
    return removed


def _mtime(fs: Any, path: str) -> float:
    if is_local(fs):
        return os.path.getmtime(path)
    info = fs.info(path)
    stamp = info.get("mtime") or info.get("LastModified") or info.get("created")
    if hasattr(stamp, "timestamp"):
        return float(stamp.timestamp())
    return float(stamp) if stamp is not None else float("inf")


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_pending(fs: Any, meta_path: str) -> bytes | None:
    """The intent record of a save in progress or killed part-way, if there is one."""
    try:
        return bytes(fs.cat_file(meta_path + PENDING_SUFFIX))
    except FileNotFoundError:
        return None
