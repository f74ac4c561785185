"""Materialising a registered model version in a folder.

The ``.mlem`` file comes from git at the resolved commit and each artifact from git
or, when DVC tracks it, through DVC at that revision (its cache or its remote), so
this works whatever is checked out, and in a fresh clone. Parsing and resolving a
reference (``rf@v1.2.0``, ``rf@latest``, ``rf#prod``) is :mod:`mlem_lib.locate`'s job;
:func:`mlem_lib.locate.checkout` calls :func:`materialise`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from mlem_lib.errors import RegistryError
from mlem_lib.registry import git


@contextmanager
def local_repo(repo: str | None) -> Iterator[str]:
    """The root of ``repo`` (a work tree) or of a temporary clone (a bare repository or
    a URL)."""
    from mlem_lib.registry.remote import registry_root

    with registry_root(repo) as (root, _):
        yield root


def materialise(root: str, commit: str, rel_meta: str, target_dir: str) -> str:
    """Write the ``.mlem`` file at ``commit`` and its artifacts under ``target_dir``.

    Returns the local object path (without ``.mlem``).
    """
    from mlem_lib import mlemfile
    from mlem_lib.registry import dvc
    from mlem_lib.storage import resolve_artifact

    text = git.show(root, commit, rel_meta)
    if text is None:
        raise RegistryError(f"{rel_meta} does not exist at commit {commit[:12]}")
    meta = mlemfile.parse(text, f"{commit[:12]}:{rel_meta}")
    local_meta = os.path.join(target_dir, os.path.basename(rel_meta))
    in_git = set(git.files_at(root, commit))
    for art in meta.artifacts.values():
        rel = resolve_artifact(rel_meta, art.uri)
        local = resolve_artifact(local_meta, art.uri)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        body = git.show(root, commit, rel) if rel in in_git else None
        if body is not None:
            with open(local, "wb") as f:
                f.write(body)
        else:
            dvc.fetch_file(root, commit, rel, local)
    with open(local_meta, "wb") as f:
        f.write(text)
    return local_meta[: -len(".mlem")]
