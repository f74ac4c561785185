"""``register``: commit a model (metadata in git, binary in DVC) and tag its version."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

from mlem_lib.errors import (
    DirtyWorkingTreeError,
    RegistryError,
    UnknownModelError,
    VersionExistsError,
)
from mlem_lib.registry import dvc, git, tags
from mlem_lib.registry import metrics as records
from mlem_lib.registry.models import RegisteredVersion
from mlem_lib.registry.paths import read_meta_at
from mlem_lib.registry.remote import push as push_refs
from mlem_lib.registry.remote import remote_of


def _content(meta: object) -> list[tuple[str, str]]:
    """What identifies a model's content: its artifacts' hashes."""
    arts = getattr(meta, "artifacts", {})
    return sorted((a.hash_algorithm, a.hash) for a in arts.values())


def _check_name(name: str) -> str:
    from gto.constants import assert_name_is_valid
    from gto.exceptions import GTOException

    try:
        assert_name_is_valid(name)
    except GTOException:
        raise RegistryError(f"invalid model name {name!r}: use letters, digits, '_', '-' "
                            "(at least 2 characters, GTO's rules), or pass name=") from None
    return name


def register(model_path: str, *, name: str | None = None, version: str | None = None,
             bump: str | None = None, repo: str = ".", push: bool = True,
             message: str | None = None, push_git: bool = False,
             force: bool = False, metrics: str | Mapping[str, Any] | None = None,
             plots: str | list[str] | None = None) -> RegisteredVersion:
    """Register a saved model as a new version in its git repository.

    Tracks the binary with DVC, commits the ``.mlem`` file and the ``.dvc`` pointer,
    pushes the binary to the default DVC remote and creates the GTO tag
    ``name@vX.Y.Z`` on that commit.

    Args:
        model_path: the saved model (with or without ``.mlem``), relative to ``repo``.
        name: the registry name (default: the ``.mlem`` file's stem).
        version: an explicit version such as ``v1.2.0``.
        bump: ``patch`` (default), ``minor`` or ``major`` bump of the latest version.
        repo: the git repository (a local path).
        push: ``dvc push`` the binary (needs a default DVC remote).
        message: commit and tag message.
        push_git: also push the commit (the current branch) and the tag to the git
            remote, so that other clones see the version (``--push``).
        force: register a version lower than the latest one.
        metrics: a JSON file (or a mapping) of evaluation results, committed as
            ``<model>.metrics.json`` with the version and named in the tag's message.
        plots: a folder or files (png, svg, json...) copied into ``<model>.plots/`` and
            committed with the version.

    Raises:
        DirtyWorkingTreeError: files unrelated to the model have uncommitted changes.
        VersionExistsError: the version, or this exact model content, is registered.
        RegistryError: ``version`` is lower than the latest one (without ``force``), or
            there is no git remote to push to.
        NoDvcRemoteError: not a DVC repository or no default remote.

    Example:
        >>> register("models/rf", bump="minor").tag  # doctest: +SKIP
        'rf@v0.1.0'
    """
    from mlem_lib import mlemfile
    from mlem_lib.storage import resolve_artifact, split_meta_path

    if version is not None and bump is not None:
        raise RegistryError("give either version or bump, not both")
    if version is not None:
        tags.check_version(version)
    root = git.toplevel(repo)
    path = model_path if os.path.isabs(model_path) else os.path.join(repo, model_path)
    obj_path, meta_path = split_meta_path(os.path.realpath(path))
    rel_meta = os.path.relpath(meta_path, os.path.realpath(root)).replace(os.sep, "/")
    if rel_meta.startswith("../"):
        raise RegistryError(f"{model_path} is outside the git repository {root}")
    meta, _, _ = mlemfile.read(meta_path)
    name = _check_name(name or os.path.basename(obj_path))
    arts = [resolve_artifact(rel_meta, a.uri) for a in meta.artifacts.values()]
    if not arts:
        raise RegistryError(f"{rel_meta} lists no artifacts to register")

    try:
        existing = tags.versions(root, name)
    except UnknownModelError:
        existing = {}
    content = _content(meta)
    for old_version, old_commit in existing.items():
        old = read_meta_at(root, old_commit, rel_meta)
        if old is not None and _content(old) == content:
            if version == old_version:  # an idempotent rerun
                return RegisteredVersion(name=name, version=old_version,
                                         tag=f"{name}@{old_version}", commit=old_commit,
                                         path=rel_meta[: -len(".mlem")])
            raise VersionExistsError(f"this content of model {name!r} is already registered "
                                     f"as {old_version} (tag {name}@{old_version})")
    if version is not None and version in existing:
        raise VersionExistsError(f"version {version} of model {name!r} is already registered "
                                 f"(commit {existing[version][:12]})")
    current = tags.latest(root, name) if existing else None
    if version is None:
        version = tags.next_version(current[0] if current else None, bump)
    elif current is not None and not force and tags.lower(version, current[0]):
        raise RegistryError(f"version {version} of {name!r} is lower than the latest, "
                            f"{current[0]}: pass force=True (--force) to register it anyway")
    if push_git:
        remote_of(root)  # no remote: fail before anything is committed

    rel_object = rel_meta[: -len(".mlem")]
    related = {rel_meta, *arts, *(a + ".dvc" for a in arts),
               *(posixpath.join(posixpath.dirname(a), ".gitignore").lstrip("/") for a in arts)}
    given = tuple(records.sources_in(root, metrics, plots))
    dirty = [p for p in git.changed_files(root) if p not in related
             and not p.startswith((f"{rel_object}.metrics.json", f"{rel_object}.plots/"))
             and not any(p == g or p.startswith(g.rstrip("/") + "/") for g in given)]
    if dirty:
        shown = ", ".join(dirty[:10]) + (f" and {len(dirty) - 10} more" if len(dirty) > 10 else "")
        raise DirtyWorkingTreeError(f"uncommitted changes unrelated to {rel_meta}: {shown}; "
                                    "commit or stash them first")
    if push:
        dvc.default_remote(root)
    elif not dvc.is_dvc_repo(root):
        dvc.default_remote(root)  # raises the "not a DVC repository" error

    written = records.stage_records(root, rel_object, metrics, plots)
    if written:
        plots_dir = [f"{rel_object}.plots"] if any("/" in w[len(rel_object):]
                                                   for w in written) else []
        git.run(root, "add", "-A", "--", *written, *plots_dir)  # -A: old plots go
        notes = records.annotation(written, rel_object)
        message = f"{message or f'Registering artifact {name} version {version}'}\n\n{notes}"
    for rel in arts:
        if git.is_tracked(root, rel):  # DVC refuses files git already tracks
            git.run(root, "rm", "-q", "--cached", "--", rel)
    dvc.track(root, [os.path.join(root, rel) for rel in arts])
    to_add = [p for p in sorted(related - set(arts)) if os.path.exists(os.path.join(root, p))]
    git.run(root, "add", "--", *to_add)
    if git.run(root, "diff", "--cached", "--name-only").strip() or git.head(root) is None:
        git.run(root, "commit", "-q", "-m", message or f"Register model {name} {version}")
    commit = git.head(root)
    if commit is None:
        raise RegistryError(f"nothing was committed in {root}")
    if push:
        dvc.push(root, [os.path.join(root, rel) for rel in arts])
    tag = tags.tag_version(root, name, commit, version, message, push=False)
    if push_git:
        push_refs(root, tag, branch=True)
    return RegisteredVersion(name=name, version=version, tag=tag, commit=commit,
                             path=rel_meta[: -len(".mlem")])
