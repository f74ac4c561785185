"""Versions and stages as GTO git tags (``name@vX.Y.Z``, ``name#stage#N``).

Everything goes through the ``gto`` library so the ``gto`` CLI and GTO-based tools
read what we write and we read what they write. ``gto`` is imported lazily.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlem_lib.errors import (
    RegistryError,
    UnknownModelError,
    VersionExistsError,
    VersionNotFoundError,
)
from mlem_lib.registry.models import RegistryEvent

BUMPS = ("patch", "minor", "major")


@contextmanager
def gto_errors(name: str) -> Iterator[None]:
    """Turn GTO's exceptions into ours, keeping GTO's message."""
    from gto import exceptions as gx

    try:
        yield
    except gx.ArtifactNotFound:
        raise UnknownModelError(f"no model named {name!r} in the registry") from None
    except (gx.VersionAlreadyRegistered, gx.VersionExistsForCommit, gx.TagExists) as exc:
        raise VersionExistsError(f"{name}: {exc}") from None
    except (gx.UnknownStage, gx.NoActiveAssignment, gx.NoStageForVersion) as exc:
        raise VersionNotFoundError(f"{name}: {exc}") from None
    except gx.GTOException as exc:
        raise RegistryError(f"{name}: {exc}") from None


def check_version(version: str) -> str:
    """Validate a semantic version (``v1.2.3``) and return it.

    Raises:
        RegistryError: not a version GTO accepts.
    """
    from gto.versions import SemVer

    if not SemVer.is_valid(version):
        raise RegistryError(f"version {version!r} is not valid: use the form v1.2.3")
    return version


def next_version(current: str | None, bump: str | None) -> str:
    """The next version: ``current`` bumped, or ``v0.0.1`` / ``v0.1.0`` / ``v1.0.0`` first.

    Example:
        >>> next_version("v1.2.3", "minor")
        'v1.3.0'
        >>> next_version(None, "major")
        'v1.0.0'
    """
    from gto.versions import SemVer

    if bump is not None and bump not in BUMPS:
        raise RegistryError(f"bump must be one of {', '.join(BUMPS)}, not {bump!r}")
    if current is None and bump in (None, "patch"):
        return str(SemVer.get_minimal().version)
    bumped = SemVer(current or "v0.0.0").bump(bump_major=bump == "major",
                                              bump_minor=bump == "minor",
                                              bump_patch=bump in (None, "patch"))
    return str(bumped.version)


def lower(version: str, than: str) -> bool:
    """Whether ``version`` comes before ``than`` in semantic-version order.

    Example:
        >>> lower("v1.9.0", "v1.10.0"), lower("v2.0.0", "v1.10.0")
        (True, False)
    """
    from gto.versions import SemVer

    return bool(SemVer(version) < SemVer(than))


def versions(root: str, name: str) -> dict[str, str]:
    """Registered, active versions of a model, newest first: ``{version: commit}``.

    Raises:
        UnknownModelError: no tag mentions ``name``.
    """
    import gto.api

    with gto_errors(name):
        found = gto.api.show(root, name, registered_only=True)
    return {v["version"]: v["commit_hexsha"] for v in found if v.get("registrations")}


def latest(root: str, name: str) -> tuple[str, str] | None:
    """``(version, commit)`` of the greatest registered version, or ``None``."""
    import gto.api

    with gto_errors(name):
        found = gto.api.find_latest_version(root, name)
    return (found.version, found.commit_hexsha) if found else None


def in_stage(root: str, name: str, stage: str) -> tuple[str, str, str] | None:
    """``(version, commit, tag)`` active in ``stage``, or ``None``.

    The latest assignment wins (as ``gto show`` reads it by default); assignments
    made within the same second are ordered by the counter in their tag
    (``name#stage#N`` counts up per model), which GTO's timestamp sort ignores.
    """
    import gto.api

    known = versions(root, name)
    with gto_errors(name):
        found = gto.api.history(root, name, ascending=True)
    steps = []
    for event in found:
        if event.get("stage") != stage or event["event"] not in ("assignment", "unassignment"):
            continue
        counter = gto.api.parse_tag(event["ref"]).get("counter", 0) if event.get("ref") else 0
        steps.append((event["timestamp"], counter, event))
    current: dict[str, str] | None = None
    for _, _, event in sorted(steps, key=lambda s: (s[0], s[1])):
        if event["event"] == "assignment" and event.get("version") in known:
            current = event
        elif current is not None and event.get("version") == current.get("version"):
            current = None  # that version was unassigned from the stage
    if current is None:
        return None
    return str(current["version"]), known[current["version"]], str(current.get("ref") or "")


def tag_version(root: str, name: str, commit: str, version: str, message: str | None,
                push: bool) -> str:
    """Create the registration tag ``name@version`` on ``commit``; returns the tag."""
    import gto.api

    with gto_errors(name):
        event = gto.api.register(root, name, commit, version=version, message=message,
                                 push=push)
    return str(event.tag)


def after_last_event(root: str, name: str) -> None:
    """Wait, if needed, until the clock is past the second of ``name``'s newest tag.

    Git tags carry whole seconds and GTO orders stage assignments by that timestamp
    alone, so two assignments within one second would be ambiguous to ``gto show``
    and GTO-based tools. Waiting (at most a second) keeps their order unambiguous.
    """
    import time
    from datetime import UTC, datetime, timedelta

    import gto.api

    with gto_errors(name):
        found = gto.api.history(root, name)
    if not found:
        return
    ready_at = max(e["timestamp"] for e in found) + timedelta(seconds=1)
    deadline = time.monotonic() + 5  # never hang on a tag dated in the future
    while (remaining := (ready_at - datetime.now(UTC)).total_seconds()) > 0 \
            and time.monotonic() < deadline:
        time.sleep(min(remaining, 0.25))


def tag_stage(root: str, name: str, version: str, stage: str, message: str | None,
              push: bool) -> str:
    """Create the assignment tag ``name#stage#N`` for ``version``; returns the tag.

    A version that held the stage before (a rollback) gets a new tag too.
    """
    import gto.api

    after_last_event(root, name)
    with gto_errors(name):
        event = gto.api.assign(root, name, stage, version=version, message=message,
                               push=push, force=True)
    return str(event.tag)


def registry_state(root: str) -> tuple[list[str], dict[str, Any]]:
    """The stages in use and, per model, its latest version and each stage's versions."""
    import gto.api

    with gto_errors("registry"):
        stages = list(gto.api.get_stages(root))
        state = gto.api.show(root)
    return stages, state


def events(root: str, name: str | None = None) -> list[RegistryEvent]:
    """Registry events, newest first (for one model when ``name`` is given)."""
    import gto.api

    if name is not None:
        versions(root, name)  # unknown model -> UnknownModelError
    with gto_errors(name or "registry"):
        found = gto.api.history(root, name)
    return [RegistryEvent(timestamp=e["timestamp"], name=e["artifact"], event=e["event"],
                          version=e.get("version"), stage=e.get("stage"), commit=e["commit"],
                          tag=e.get("ref") if e.get("ref") != e["commit"] else None,
                          author=e.get("author"), author_email=e.get("author_email"),
                          message=(e.get("message") or "").strip())
            for e in found]
