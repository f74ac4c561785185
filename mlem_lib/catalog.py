"""``mlem ls``: the models and data objects in a folder, a repository or a registry, and
search over them.

Each entry says what an object is (name, framework or data type, methods, description,
labels) and, for a model registered in the git repository it lives in, its latest
version and stages. MLEM's other objects (links, deployments, envs, builders) are listed
too, with ``--type``. Filters: ``label`` (all given labels), ``framework`` (the model's
framework, a data object's type, a deployment's target) and ``query`` (a case-insensitive
substring of the name, description or labels).

Example:
    >>> import tempfile, mlem_lib.api as mlem
    >>> folder = tempfile.mkdtemp()
    >>> _ = mlem.save(lambda xs: xs, f"{folder}/models/echo", sample_data=[1, 2],
    ...               description="returns its input", labels=["demo"])
    >>> [(e.name, e.object_type, e.framework) for e in list_objects(folder)]
    [('models/echo', 'model', 'callable')]
    >>> [e.name for e in search(list_objects(folder), query="INPUT")]
    ['models/echo']
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from pydantic import BaseModel, Field

__all__ = ["CatalogEntry", "list_objects", "list_registry", "search"]

SKIP_DIRS = {".git", ".dvc", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache",
             ".pytest_cache", ".tox"}


class CatalogEntry(BaseModel):
    """One object ``mlem ls`` lists."""

    name: str = Field(description="path without .mlem (relative to the folder), or the "
                                  "registry name")
    path: str = Field(description="the .mlem file")
    object_type: str = Field(description="model, data, link, deployment, env or builder")
    framework: str | None = Field(default=None, description="model framework, data type, or the "
                                                   "type of a deployment/env/builder")
    methods: list[str] = Field(default_factory=list)
    description: str | None = None
    labels: list[str] = Field(default_factory=list)
    registered_as: str | None = Field(default=None,
                                      description="registry name (in a folder listing)")
    latest: str | None = Field(default=None, description="latest registered version")
    stages: dict[str, str] = Field(default_factory=dict, description="stage -> version")
    link_to: str | None = Field(default=None, description="what a link points at")


def _skip(dirname: str) -> bool:
    return dirname in SKIP_DIRS or dirname.startswith(".venv") or dirname.endswith(
        ".egg-info")


def _entry(path: str, rel: str) -> CatalogEntry | None:
    from mlem_lib import mlemfile
    from mlem_lib.compat.objects import read_object
    from mlem_lib.errors import MetadataError, ObjectNotFoundError
    from mlem_lib.meta import ModelMeta

    name = rel[: -len(".mlem")].replace(os.sep, "/")
    try:
        doc, _ = read_object(path)
    except (MetadataError, ObjectNotFoundError, OSError):
        return None
    kind = doc.get("object_type")
    if kind in (None, "model", "data"):
        try:
            meta = mlemfile.parse(_bytes(path), path)
        except MetadataError:
            return None
        if isinstance(meta, ModelMeta):
            return CatalogEntry(name=name, path=path, object_type="model",
                                framework=meta.model_type.type,
                                methods=list(meta.model_type.methods),
                                description=meta.description, labels=list(meta.labels))
        return CatalogEntry(name=name, path=path, object_type="data",
                            framework=getattr(meta.data_type, "type", None),
                            description=meta.description, labels=list(meta.labels))
    if kind == "link":
        where = str(doc.get("path"))
        if doc.get("project") or doc.get("rev"):
            where += f" ({doc.get('project') or 'this repository'}"
            where += f"@{doc['rev']})" if doc.get("rev") else ")"
        return CatalogEntry(name=name, path=path, object_type="link",
                            framework=doc.get("link_type"), link_to=where)
    if kind in ("deployment", "env", "builder"):
        return CatalogEntry(name=name, path=path, object_type=str(kind),
                            framework=doc.get("type"), description=doc.get("description"))
    return None


def _bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _registry_rows(folder: str) -> dict[str, tuple[str, str | None, dict[str, str]]]:
    """Registered models of the git repository holding ``folder``:
    ``{abs .mlem path: (name, latest, stages)}`` (empty outside a registry)."""
    from mlem_lib.errors import MlemError
    from mlem_lib.registry import git
    from mlem_lib.registry.listing import list_models

    try:
        root = git.toplevel(folder)
        if not git.run(root, "tag", "--list", "*@v*").strip():
            return {}  # no registrations: do not pay for importing gto
        models = list_models(root)
    except MlemError:
        return {}
    rows = {}
    for m in models:
        if m.path:
            path = os.path.realpath(os.path.join(root, m.path + ".mlem"))
            rows[path] = (m.name, m.latest, {s: v for s, v in m.stages.items() if v})
    return rows


def list_objects(folder: str = ".", *, kinds: Iterable[str] | None = None
                 ) -> list[CatalogEntry]:
    """The MLEM objects under ``folder`` (recursively), sorted by name.

    Args:
        folder: where to look.
        kinds: object types to keep (default: models and data objects).

    Raises:
        ObjectNotFoundError: ``folder`` does not exist.
    """
    from mlem_lib.errors import ObjectNotFoundError

    if not os.path.isdir(folder):
        raise ObjectNotFoundError(f"no folder at {folder}")
    wanted = set(kinds or ("model", "data"))
    registered = _registry_rows(folder)
    out = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _skip(d))
        for file in sorted(files):
            if not file.endswith(".mlem"):
                continue
            path = os.path.join(here, file)
            entry = _entry(path, os.path.relpath(path, folder))
            if entry is None or entry.object_type not in wanted:
                continue
            row = registered.get(os.path.realpath(path))
            if row is not None:
                entry.registered_as, entry.latest, entry.stages = row
            out.append(entry)
    return sorted(out, key=lambda e: e.name)


def list_registry(repo: str = ".") -> list[CatalogEntry]:
    """The models registered in a repository (local path, bare repository or git URL),
    described from the ``.mlem`` file of their latest version."""
    from mlem_lib.registry.checkout import local_repo
    from mlem_lib.registry.listing import list_models
    from mlem_lib.registry.paths import read_meta_at

    out = []
    with local_repo(repo) as root:
        from mlem_lib.meta import ModelMeta
        from mlem_lib.registry import tags

        for m in list_models(root):
            entry = CatalogEntry(name=m.name, path=(m.path or m.name) + ".mlem",
                                 object_type="model", latest=m.latest,
                                 stages={s: v for s, v in m.stages.items() if v},
                                 description=m.description, labels=list(m.labels))
            commit = tags.versions(root, m.name).get(m.latest or "")
            meta = read_meta_at(root, commit, entry.path) if commit and m.path else None
            if isinstance(meta, ModelMeta):
                entry.framework = meta.model_type.type
                entry.methods = list(meta.model_type.methods)
            out.append(entry)
    return out


def search(entries: Iterable[CatalogEntry], *, label: Iterable[str] | None = None,
           framework: str | None = None, query: str | None = None) -> list[CatalogEntry]:
    """The entries that have every ``label``, the ``framework`` and contain ``query``.

    Example:
        >>> rows = [CatalogEntry(name="rf", path="rf.mlem", object_type="model",
        ...                      framework="sklearn", labels=["iris", "prod"])]
        >>> [e.name for e in search(rows, label=["iris"], framework="SKLEARN")]
        ['rf']
        >>> search(rows, query="xgb")
        []
    """
    labels = {x.lower() for x in label or ()}
    text = query.lower() if query else None
    out = []
    for e in entries:
        if labels and not labels <= {x.lower() for x in e.labels}:
            continue
        if framework and (e.framework or "").lower() != framework.lower():
            continue
        if text and not any(text in (field or "").lower() for field in (
                e.name, e.registered_as, e.description, *e.labels)):
            continue
        out.append(e)
    return out
