"""Taking things back: ``unassign`` a stage, ``deregister`` a version, ``deprecate`` a model.

Each one is GTO's tag (``name#stage!#N``, ``name@v1.0.0!``, ``name@deprecated``), so the
``gto`` CLI reads them; nothing is deleted, and the history keeps who did it and when.
"""

from __future__ import annotations

from mlem_lib.errors import RegistryError, VersionNotFoundError
from mlem_lib.registry import tags
from mlem_lib.registry.models import RegistryEvent
from mlem_lib.registry.remote import push as push_tags
from mlem_lib.registry.remote import registry_root


def _newest_event(root: str, name: str, before: set[str]) -> RegistryEvent:
    """The event whose tag was just created (GTO's API does not always return it)."""
    for event in tags.events(root, name):
        if event.tag and event.tag not in before:
            return event
    raise RegistryError(f"{name}: GTO created no tag")


def _tags_of(root: str, name: str) -> set[str]:
    return {e.tag for e in tags.events(root, name) if e.tag}


def unassign(name: str, stage: str, *, repo: str = ".", push: bool = False,
             message: str | None = None) -> RegistryEvent:
    """Take the version out of ``stage`` (GTO's tag ``name#stage!#N``).

    ``name#stage`` then resolves to nothing until another version is assigned.

    Args:
        name: the model's registry name.
        stage: the stage, e.g. ``prod``.
        repo: a work tree, a bare repository or a URL (tag made in a clone and pushed).
        push: push the tag to the work tree's remote.
        message: the tag's message.

    Raises:
        UnknownModelError: no such model.
        VersionNotFoundError: no version is in ``stage``.

    Example:
        >>> unassign("rf", "prod").event  # doctest: +SKIP
        'unassignment'
    """
    import gto.api

    with registry_root(repo, for_writing=True) as (root, cloned):
        current = tags.in_stage(root, name, stage)
        if current is None:
            raise VersionNotFoundError(f"no version of {name!r} is in stage {stage!r}: "
                                       "nothing to unassign")
        before = _tags_of(root, name)
        tags.after_last_event(root, name)
        with tags.gto_errors(name):
            gto.api.unassign(root, name, stage=stage, version=current[0], message=message)
        event = _newest_event(root, name, before)
        if push or cloned:
            push_tags(root, str(event.tag))
        return event


def deregister(name: str, version: str, *, repo: str = ".", push: bool = False,
               message: str | None = None) -> RegistryEvent:
    """Withdraw a version (GTO's tag ``name@vX.Y.Z!``): it no longer counts as registered,
    so ``name@latest`` moves to the greatest version still registered.

    Args:
        name: the model's registry name.
        version: the version to withdraw, e.g. ``v1.2.0``.
        repo: a work tree, a bare repository or a URL (tag made in a clone and pushed).
        push: push the tag to the work tree's remote.
        message: the tag's message.

    Raises:
        UnknownModelError: no such model.
        VersionNotFoundError: no such registered version.

    Example:
        >>> deregister("rf", "v1.2.0").event  # doctest: +SKIP
        'deregistration'
    """
    import gto.api

    tags.check_version(version)
    with registry_root(repo, for_writing=True) as (root, cloned):
        known = tags.versions(root, name)
        if version not in known:
            raise VersionNotFoundError(f"model {name!r} has no registered version {version} "
                                       f"(registered: {', '.join(known) or 'none'})")
        before = _tags_of(root, name)
        tags.after_last_event(root, name)
        with tags.gto_errors(name):
            gto.api.deregister(root, name, version=version, message=message)
        event = _newest_event(root, name, before)
        if push or cloned:
            push_tags(root, str(event.tag))
        return event


def deprecate(name: str, *, repo: str = ".", push: bool = False,
              message: str | None = None) -> RegistryEvent:
    """Mark a whole model as deprecated (GTO's tag ``name@deprecated``): it leaves
    ``registry show`` and ``name@latest``; its history and tags stay.

    Args:
        name: the model's registry name.
        repo: a work tree, a bare repository or a URL (tag made in a clone and pushed).
        push: push the tag to the work tree's remote.
        message: the tag's message.

    Raises:
        UnknownModelError: no such model.
        RegistryError: it is deprecated already.

    Example:
        >>> deprecate("rf").event  # doctest: +SKIP
        'deprecation'
    """
    import gto.api

    with registry_root(repo, for_writing=True) as (root, cloned):
        tags.versions(root, name)  # unknown model -> UnknownModelError
        before = _tags_of(root, name)
        tags.after_last_event(root, name)
        with tags.gto_errors(name):
            gto.api.deprecate(root, name, message=message)
        event = _newest_event(root, name, before)
        if push or cloned:
            push_tags(root, str(event.tag))
        return event
