"""What the registry holds: models with their latest version and stages, and events."""

from __future__ import annotations

from mlem_lib.errors import RegistryError
from mlem_lib.registry import tags
from mlem_lib.registry.models import ModelSummary, RegistryEvent
from mlem_lib.registry.paths import model_meta_path, read_meta_at
from mlem_lib.registry.remote import registry_root


def list_models(repo: str = ".") -> list[ModelSummary]:
    """Every model in the registry with its latest version and the version in each stage.

    Description and labels come from the ``.mlem`` file of the latest version.

    Example:
        >>> [m.latest for m in list_models()]  # doctest: +SKIP
        ['v1.3.0']
    """
    with registry_root(repo) as (root, _):
        return _list_models(root)


def _list_models(root: str) -> list[ModelSummary]:
    stages, state = tags.registry_state(root)
    out = []
    for name in sorted(state):
        row = state[name]
        found = {s: tags.in_stage(root, name, s) for s in stages}
        summary = ModelSummary(name=name, latest=row.get("version"),
                               stages={s: f[0] if f else None for s, f in found.items()})
        if summary.latest:
            commit = tags.versions(root, name).get(summary.latest)
            if commit:
                try:
                    rel = model_meta_path(root, commit, name)
                except RegistryError:
                    rel = None
                meta = read_meta_at(root, commit, rel) if rel else None
                if rel and meta is not None:
                    summary.path = rel[: -len(".mlem")]
                    summary.description = meta.description
                    summary.labels = list(meta.labels)
        out.append(summary)
    return out


def history(name: str, repo: str = ".") -> list[RegistryEvent]:
    """Registrations, stage assignments, deregistrations, deprecation, and the rollouts
    that deployment state files in the repository recorded (:func:`rollouts`), newest
    first.

    Raises:
        UnknownModelError: no such model.

    Example:
        >>> [e.event for e in history("rf")]  # doctest: +SKIP
        ['assignment', 'registration']
    """
    with registry_root(repo) as (root, _):
        # newest first in both; at a tie a rollout is newer than the tag it deployed
        events = rollouts(root, name)[::-1] + tags.events(root, name)
    # git tags carry whole seconds: within one second the greater version is the newer
    # event (two registrations in a row); otherwise GTO's order stands (a stable sort)
    return sorted(events, key=lambda e: (e.timestamp, _version_key(e.version)), reverse=True)


def _version_key(version: str | None) -> tuple[int, ...]:
    """``v1.10.0`` -> ``(1, 10, 0)``; anything else sorts first.

    Example:
        >>> _version_key("v1.10.0") > _version_key("v1.9.3"), _version_key(None)
        (True, ())
    """
    import re

    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+).*", version or "")
    return tuple(int(p) for p in match.groups()) if match else ()


_SKIP_DIRS = {".git", ".dvc", ".venv", "node_modules", "__pycache__"}


def rollouts(root: str, name: str) -> list[RegistryEvent]:
    """Rollouts and rollbacks of ``name`` recorded in the deployment state files
    (``*.state.json``) inside the work tree ``root``: who (user, host) deployed which
    version, and when.

    Example:
        >>> import tempfile
        >>> rollouts(tempfile.mkdtemp(), "rf")
        []
    """
    import os
    from datetime import datetime

    from pydantic import ValidationError

    from mlem_lib.deploy.state import DeploymentState
    from mlem_lib.locate import as_reference

    events = []
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        for file in files:
            if not file.endswith(".state.json"):
                continue
            try:
                with open(os.path.join(base, file), encoding="utf-8") as f:
                    state = DeploymentState.model_validate_json(f.read())
            except (OSError, ValueError, ValidationError):
                continue  # not a deployment state of ours
            for r in state.history:
                ref = as_reference(r.model) if r.model else None
                if ref is None or ref.name != name:
                    continue
                events.append(RegistryEvent(
                    timestamp=datetime.fromisoformat(r.at), name=name, event=r.action,
                    version=r.version or ref.version, stage=ref.stage, commit="",
                    author=f"{r.user or '?'}@{r.host or '?'}",
                    message=f"{state.name} ({state.type}): {r.model}, model "
                            f"{r.model_hash[:12]}"))
    return events
