"""Where a registered model's ``.mlem`` file lives inside a commit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlem_lib.errors import MetadataError, RegistryError
from mlem_lib.registry import git

if TYPE_CHECKING:
    from mlem_lib.meta import DataMeta, ModelMeta


def _annotated_path(root: str, commit: str, name: str) -> str | None:
    """The path GTO's ``artifacts.yaml`` gives ``name`` at ``commit``, if any."""
    text = git.show(root, commit, "artifacts.yaml")
    if text is None:
        return None
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    entry = data.get(name) if isinstance(data, dict) else None
    path = entry.get("path") if isinstance(entry, dict) else None
    return str(path) if path else None


def model_meta_path(root: str, commit: str, name: str) -> str:
    """The repository-relative path of ``name``'s ``.mlem`` file at ``commit``.

    Uses GTO's ``artifacts.yaml`` annotation when present, else the only file
    called ``<name>.mlem`` in the commit's tree.

    Raises:
        RegistryError: no such file, or several candidates.
    """
    annotated = _annotated_path(root, commit, name)
    if annotated:
        return annotated if annotated.endswith(".mlem") else annotated + ".mlem"
    wanted = f"{name}.mlem"  # GTO names may hold '/': nlp/rf is <dir>/nlp/rf.mlem
    found = [f for f in git.files_at(root, commit) if f == wanted or f.endswith("/" + wanted)]
    if not found:
        raise RegistryError(f"commit {commit[:12]} registered as {name!r} contains no "
                            f"{wanted} file")
    if len(found) > 1:
        raise RegistryError(f"commit {commit[:12]} has several {wanted} files "
                            f"({', '.join(found)}): annotate {name!r} in artifacts.yaml")
    return found[0]


def read_meta_at(root: str, commit: str, rel_meta: str) -> ModelMeta | DataMeta | None:
    """The parsed metadata of ``rel_meta`` at ``commit``, or ``None`` if it is missing/invalid."""
    from mlem_lib import mlemfile

    text = git.show(root, commit, rel_meta)
    if text is None:
        return None
    try:
        return mlemfile.parse(text, f"{commit[:12]}:{rel_meta}")
    except MetadataError:
        return None
