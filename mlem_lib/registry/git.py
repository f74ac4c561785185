"""Thin wrappers around the ``git`` command line (the only git the registry needs)."""

from __future__ import annotations

import os
import subprocess

from mlem_lib.errors import RegistryError


def run(root: str, *args: str, check: bool = True) -> str:
    """Run ``git -C root args...`` and return its stdout.

    Raises:
        RegistryError: git is missing or the command failed (with git's message).
    """
    try:
        proc = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        raise RegistryError("git is not installed (it is needed for the registry)") from None
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise RegistryError(f"git {' '.join(args)} failed: {msg[-1] if msg else proc.returncode}")
    return proc.stdout


def toplevel(path: str) -> str:
    """The root of the git working tree containing ``path``.

    Raises:
        RegistryError: ``path`` is not inside a git repository.
    """
    if not os.path.isdir(path):
        raise RegistryError(f"{path} is not a directory (expected a git repository)")
    try:
        return run(path, "rev-parse", "--show-toplevel").strip()
    except RegistryError:
        raise RegistryError(f"{path} is not inside a git repository") from None


def changed_files(root: str) -> list[str]:
    """Paths (relative to ``root``) that are modified, staged or untracked."""
    out = run(root, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    entries = out.split("\0")
    paths: list[str] = []
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":  # a rename also lists its source path
            i += 1
    return paths


def is_tracked(root: str, rel: str) -> bool:
    """Whether git tracks ``rel`` (in the index)."""
    return bool(run(root, "ls-files", "--", rel).strip())


def head(root: str) -> str | None:
    """The commit checked out, or ``None`` in a repository without commits."""
    out = run(root, "rev-parse", "--verify", "-q", "HEAD", check=False).strip()
    return out or None


def show(root: str, commit: str, rel: str) -> bytes | None:
    """The content of ``rel`` at ``commit``, or ``None`` when it does not exist there."""
    proc = subprocess.run(["git", "-C", root, "show", f"{commit}:{rel}"], capture_output=True,
                          check=False)
    return proc.stdout if proc.returncode == 0 else None


def files_at(root: str, commit: str) -> list[str]:
    """Every file path in the tree of ``commit``."""
    return run(root, "ls-tree", "-r", "--name-only", commit).splitlines()


def clone(url: str, target: str) -> None:
    """``git clone`` a repository (a path or URL) into ``target``."""
    try:
        proc = subprocess.run(["git", "clone", "-q", url, target], capture_output=True,
                              text=True, check=False)
    except FileNotFoundError:
        raise RegistryError("git is not installed (it is needed for the registry)") from None
    if proc.returncode != 0:
        raise RegistryError(f"cannot clone {url}: {proc.stderr.strip()}")
