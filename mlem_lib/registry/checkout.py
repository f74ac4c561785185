"""Materialising a registry reference (``rf@v1.2.0``, ``rf@latest``, ``rf#prod``).

The ``.mlem`` file comes from git at the resolved commit and each artifact from git
or, when DVC tracks it, through DVC at that revision (its cache or its remote), so
this works whatever is checked out, and in a fresh clone.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from mlem_lib.errors import RegistryError, VersionNotFoundError
from mlem_lib.registry import git, tags
from mlem_lib.registry.models import RegisteredVersion
from mlem_lib.registry.paths import model_meta_path

_REF = re.compile(r"^(?P<name>[A-Za-z0-9][\w./-]*?)"
                  r"(?:@(?P<version>latest|v?\d+\.\d+\.\d+\S*)|#(?P<stage>[\w.-]+)(?:#\d+)?)$")


def parse_reference(ref: str) -> tuple[str, str | None, str | None]:
    """Split a reference into ``(name, version, stage)``; version may be ``latest``.

    Example:
        >>> parse_reference("rf#prod")
        ('rf', None, 'prod')
        >>> parse_reference("rf@v1.2.0")
        ('rf', 'v1.2.0', None)
    """
    match = _REF.match(ref)
    if not match:
        raise RegistryError(f"{ref!r} is not a registry reference: use NAME@vX.Y.Z, "
                            "NAME@latest or NAME#STAGE")
    return match["name"], match["version"], match["stage"]


def resolve(root: str, ref: str) -> RegisteredVersion:
    """The version and commit a reference points at in the repository at ``root``.

    Raises:
        UnknownModelError: no such model.
        VersionNotFoundError: no such version, no version in that stage, none registered.
    """
    name, version, stage = parse_reference(ref)
    if stage is not None:
        found = tags.in_stage(root, name, stage)
        if found is None:
            raise VersionNotFoundError(f"no version of {name!r} is in stage {stage!r}")
        version, commit, _ = found
    elif version == "latest":
        latest = tags.latest(root, name)
        if latest is None:
            raise VersionNotFoundError(f"model {name!r} has no registered version")
        version, commit = latest
    else:
        assert version is not None
        known = tags.versions(root, name)
        if version not in known:
            raise VersionNotFoundError(f"model {name!r} has no version {version} (registered: "
                                       f"{', '.join(known) or 'none'})")
        commit = known[version]
    return RegisteredVersion(name=name, version=version, tag=f"{name}@{version}",
                             commit=commit,
                             path=model_meta_path(root, commit, name)[: -len(".mlem")])


@contextmanager
def local_repo(repo: str | None) -> Iterator[str]:
    """The root of ``repo`` (a local path) or of a temporary clone (a URL)."""
    repo = repo or "."
    if os.path.isdir(repo):
        yield git.toplevel(repo)
        return
    with tempfile.TemporaryDirectory(prefix="mlem-registry-clone-") as tmp:
        git.clone(repo, tmp)
        yield tmp


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


@contextmanager
def checkout_reference(ref: str, repo: str | None = None) -> Iterator[str]:
    """Yield a local path holding exactly the model version ``ref`` points at.

    Args:
        ref: ``NAME@vX.Y.Z``, ``NAME@latest`` or ``NAME#STAGE``.
        repo: a local repository path or a git URL (default: the current directory).

    Example:
        >>> with checkout_reference("rf#prod") as path:  # doctest: +SKIP
        ...     model = mlem_lib.api.load(path)
    """
    with local_repo(repo) as root:
        found = resolve(root, ref)
        assert found.path is not None
        with tempfile.TemporaryDirectory(prefix="mlem-registry-") as tmp:
            yield materialise(root, found.commit, found.path + ".mlem", tmp)
