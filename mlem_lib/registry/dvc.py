"""Model binaries through DVC: track them, push them, read them back at a revision.

``dvc`` is imported lazily (``import dvc.api`` alone costs about a second).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlem_lib.errors import NoDvcRemoteError, RegistryError

os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@contextmanager
def _repo(root: str) -> Iterator[Any]:
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        repo = Repo(root)
    except NotDvcRepoError:
        raise NoDvcRemoteError(f"{root} is not a DVC repository: run `dvc init` and "
                               "`dvc remote add -d NAME URL` there, then commit") from None
    try:
        yield repo
    finally:
        repo.close()


def default_remote(root: str) -> str:
    """The name of the repository's default DVC remote.

    Raises:
        NoDvcRemoteError: no ``.dvc`` folder, or no default remote configured.
    """
    with _repo(root) as repo:
        name = repo.config["core"].get("remote")
        if not name:
            raise NoDvcRemoteError(f"no default DVC remote is configured in {root}: run "
                                   "`dvc remote add -d NAME URL` (a local folder or s3://...)")
        if name not in repo.config["remote"]:
            raise NoDvcRemoteError(f"the default DVC remote {name!r} of {root} is not defined")
        return str(name)


def is_dvc_repo(root: str) -> bool:
    """Whether ``root`` has a ``.dvc`` folder."""
    return os.path.isdir(os.path.join(root, ".dvc"))


def track(root: str, paths: list[str]) -> None:
    """``dvc add`` the files (absolute paths) so DVC, not git, holds them."""
    from dvc.exceptions import DvcException

    with _repo(root) as repo:
        repo.scm_context.quiet = True  # we stage and commit the pointers ourselves
        try:
            repo.add(paths)
        except DvcException as exc:
            raise RegistryError(f"dvc add failed: {exc}") from None


def push(root: str, paths: list[str]) -> int:
    """``dvc push`` the files (absolute paths) to the default remote; returns files pushed."""
    from dvc.exceptions import DvcException

    remote = default_remote(root)
    with _repo(root) as repo:
        try:
            return int(repo.push(targets=paths, remote=remote))
        except DvcException as exc:
            raise RegistryError(f"dvc push to remote {remote!r} failed: {exc}") from None


def fetch_file(root: str, rev: str, rel: str, target: str) -> None:
    """Copy ``rel`` as it was at ``rev`` (from git or DVC's cache/remote) to ``target``.

    Raises:
        RegistryError: the file or its DVC data cannot be found.
    """
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(url=root, rev=rev)
    try:
        fs.get_file(rel, target)
    except FileNotFoundError:
        raise RegistryError(f"{rel} does not exist at revision {rev[:12]}") from None
    except Exception as exc:  # dvc raises many kinds here (missing cache, remote errors)
        raise RegistryError(f"cannot read {rel} at revision {rev[:12]} through DVC: "
                            f"{exc}") from None
    finally:
        fs.close()
