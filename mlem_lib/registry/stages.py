"""Stages (``prod``, ``staging``...) given to model versions, and version look-ups."""

from __future__ import annotations

from mlem_lib.errors import VersionNotFoundError
from mlem_lib.registry import tags
from mlem_lib.registry.models import StageAssignment
from mlem_lib.registry.remote import push as push_tags
from mlem_lib.registry.remote import registry_root


def assign(name: str, stage: str, *, version: str | None = None,
           repo: str = ".", push: bool = False) -> StageAssignment:
    """Put a version of a model in a stage (the GTO tag ``name#stage#N``).

    Assigning the version the stage already has is a no-op that returns the
    existing assignment; assigning another version moves the stage.

    Args:
        name: the model's registry name.
        stage: the stage, e.g. ``prod``.
        version: the version (default: the latest registered one).
        repo: the git repository: a work tree, a bare repository, or a URL (the tag is
            made in a temporary clone and pushed).
        push: push the tag to the work tree's remote.

    Raises:
        UnknownModelError: no such model.
        VersionNotFoundError: no such version.

    Example:
        >>> assign("rf", "prod", version="v1.2.0").tag  # doctest: +SKIP
        'rf#prod#1'
    """
    with registry_root(repo, for_writing=True) as (root, cloned):
        found = _assign(root, name, stage, version)
        if (push or cloned) and found[1]:
            push_tags(root, found[0].tag)
        return found[0]


def _assign(root: str, name: str, stage: str,
            version: str | None) -> tuple[StageAssignment, bool]:
    """(the assignment, whether a tag was created)."""
    known = tags.versions(root, name)
    if version is None:
        latest = tags.latest(root, name)
        if latest is None:
            raise VersionNotFoundError(f"model {name!r} has no registered version")
        version = latest[0]
    tags.check_version(version)
    if version not in known:
        raise VersionNotFoundError(f"model {name!r} has no version {version} (registered: "
                                   f"{', '.join(known) or 'none'})")
    current = tags.in_stage(root, name, stage)
    if current is not None and current[0] == version:
        return StageAssignment(name=name, version=version, stage=stage, tag=current[2],
                               commit=current[1]), False
    tag = tags.tag_stage(root, name, version, stage, None, push=False)
    return StageAssignment(name=name, version=version, stage=stage, tag=tag,
                           commit=known[version]), True


def find_stage_version(name: str, stage: str, *, repo: str = ".") -> str | None:
    """The version of ``name`` in ``stage``, or ``None`` when the stage is empty.

    Raises:
        UnknownModelError: no such model.

    Example:
        >>> find_stage_version("rf", "prod")  # doctest: +SKIP
        'v1.2.0'
    """
    with registry_root(repo) as (root, _):
        found = tags.in_stage(root, name, stage)
    return found[0] if found else None


def find_latest_version(name: str, *, repo: str = ".") -> str | None:
    """The greatest registered version of ``name``, or ``None``.

    Raises:
        UnknownModelError: no such model.

    Example:
        >>> find_latest_version("rf")  # doctest: +SKIP
        'v1.3.0'
    """
    with registry_root(repo) as (root, _):
        found = tags.latest(root, name)
    return found[0] if found else None
