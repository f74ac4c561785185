"""Where a registry lives: a work tree, a bare repository, a ``file://`` or remote URL.

Reads work on any of them (a bare repository or a URL is cloned into a temporary
folder first). Writes of tags (assign, deprecate, unassign, deregister) on a bare
repository or a URL are made in a temporary clone and pushed back; in a work tree
they stay local unless ``push=True``, which sends them to the work tree's remote.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from mlem_lib.errors import RegistryError
from mlem_lib.registry import git


def is_bare(path: str) -> bool:
    """Whether ``path`` is a bare git repository (a folder with no work tree).

    Example:
        >>> import tempfile
        >>> is_bare(tempfile.gettempdir())
        False
    """
    if not os.path.isdir(path):
        return False
    out = git.run(path, "rev-parse", "--is-bare-repository", check=False).strip()
    return out == "true"


def _is_work_tree(repo: str) -> bool:
    return os.path.isdir(repo) and not is_bare(repo)


@contextmanager
def registry_root(repo: str | None, *, for_writing: bool = False) -> Iterator[tuple[str, bool]]:
    """``(root of a work tree, whether it is a temporary clone)`` for ``repo``.

    Args:
        repo: a folder inside a work tree (default: the current one), a bare repository
            path, a ``file://`` URL or any URL git can clone.
        for_writing: the caller will create tags: a clone must be a full one.

    Raises:
        RegistryError: not a git repository, or the clone failed.
    """
    repo = repo or "."
    if _is_work_tree(repo):
        yield git.toplevel(repo), False
        return
    if os.path.exists(repo) and not os.path.isdir(repo):
        raise RegistryError(f"{repo} is not a directory (expected a git repository)")
    with tempfile.TemporaryDirectory(prefix="mlem-registry-clone-") as tmp:
        git.clone(os.path.abspath(repo) if os.path.isdir(repo) else repo, tmp)
        yield tmp, True


def remote_of(root: str) -> str:
    """The remote that pushes go to: the current branch's upstream remote, else ``origin``.

    Raises:
        RegistryError: the repository has no such remote.
    """
    branch = git.run(root, "symbolic-ref", "-q", "--short", "HEAD", check=False).strip()
    remote = ""
    if branch:
        remote = git.run(root, "config", f"branch.{branch}.remote", check=False).strip()
    remote = remote or "origin"
    known = git.run(root, "remote").split()
    if remote not in known:
        raise RegistryError(f"{root} has no git remote {remote!r} to push to: add one with "
                            f"`git remote add {remote} URL`, or leave out --push")
    return remote


def push(root: str, *tags: str, branch: bool = False) -> str:
    """Push ``tags`` (and with ``branch=True`` the current branch) to the remote.

    Returns the remote's name.

    Raises:
        RegistryError: no remote, or git refused the push (with git's message).
    """
    remote = remote_of(root)
    refs = [f"refs/tags/{t}:refs/tags/{t}" for t in tags]
    if branch:
        current = git.run(root, "symbolic-ref", "-q", "HEAD", check=False).strip()
        if not current:
            raise RegistryError(f"{root} is on a detached HEAD: check out a branch to push "
                                "the registration commit")
        refs.insert(0, f"{current}:{current}")
    if refs:
        git.run(root, "push", "-q", remote, *refs)
    return remote
