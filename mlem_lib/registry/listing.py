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
    """Registrations and stage assignments of a model, newest first.

    Raises:
        UnknownModelError: no such model.

    Example:
        >>> [e.event for e in history("rf")]  # doctest: +SKIP
        ['assignment', 'registration']
    """
    with registry_root(repo) as (root, _):
        return tags.events(root, name)
