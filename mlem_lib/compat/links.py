"""MLEM links (``object_type: link``): ``.mlem`` files that name another object.

``mlem link models/rf latest`` writes ``latest.mlem``::

    object_type: link
    link_type: model
    path: models/rf.mlem

and ``load("latest")`` then loads ``models/rf``. The rules are MLEM 0.4's:

* ``path`` is a URL or an absolute path: used as it is;
* with ``project`` (a folder, ``file://`` URL, object-store URL or git repository) the
  path is inside that project, at ``rev`` when one is given (a git revision: branch, tag
  or commit);
* otherwise the path is relative to the MLEM project holding the link (the nearest
  folder above it with a ``.mlem.yaml`` file) or, outside a project, to the link's own
  folder.

Links may point at links (up to :data:`MAX_HOPS`); a cycle is an error. Links that need
a git checkout (``rev``, or a git URL as ``project``) are followed by
:func:`mlem_lib.locate.open_object`, which keeps the checkout alive while the object is
used; :func:`target` follows the others and is what :func:`mlem_lib.mlemfile.read`
uses, so a link works wherever a path is taken.

Example:
    >>> link = parse(b"object_type: link\\nlink_type: model\\npath: models/rf.mlem\\n")
    >>> link.path, link.link_type, needs_checkout(link)
    ('models/rf.mlem', 'model', False)
    >>> parse(b"object_type: model\\nmodel_type: {type: sklearn}\\n") is None
    True
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mlem_lib.errors import MetadataError, ObjectNotFoundError

__all__ = ["MAX_HOPS", "MlemLink", "needs_checkout", "parse",
           "project_root", "target", "write_link"]

MAX_HOPS = 16
"""How many links in a row may be followed."""
PROJECT_MARKER = ".mlem.yaml"
"""The file that marks the root of a MLEM project."""
_GIT_HOSTS = ("github.com", "gitlab.com", "bitbucket.org")


class MlemLink(BaseModel):
    """The content of a MLEM link file.

    Attributes:
        path: the linked object's ``.mlem`` path (see the module docstring for its base).
        project: the project (repository, folder, bucket) the path is in.
        rev: a git revision of ``project`` (or of the repository holding the link).
        link_type: the linked object's ``object_type`` (``model``, ``data``...).
    """

    model_config = ConfigDict(extra="allow")

    object_type: str = "link"
    path: str
    project: str | None = None
    rev: str | None = None
    link_type: str | None = None


def parse(text: bytes | str, source: str = "<link>") -> MlemLink | None:
    """The link ``text`` describes, or ``None`` when it is another kind of ``.mlem`` file.

    Raises:
        MetadataError: an ``object_type: link`` file without a usable ``path``.
    """
    raw = text.encode() if isinstance(text, str) else text
    if b"link" not in raw:  # cheap: most .mlem files are models and data
        return None
    from mlem_lib.safeyaml import _yaml_load

    try:
        doc = _yaml_load(raw)
    except Exception:  # not YAML: mlemfile.parse reports that with its own message
        return None
    if not isinstance(doc, dict) or doc.get("object_type") != "link":
        return None
    try:
        return MlemLink.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MetadataError(f"{source}: invalid MLEM link at '{where}': {first['msg']}") from None


def _is_git_url(url: str) -> bool:
    lowered = url.lower()
    return (lowered.endswith(".git") or lowered.startswith(("git@", "ssh://", "git://"))
            or any(f"//{host}/" in lowered or lowered.startswith(f"https://{host}")
                   for host in _GIT_HOSTS))


def _local_project(project: str) -> str | None:
    """The local folder a ``project`` names (a path or ``file://`` URL), else ``None``."""
    path = project[len("file://"):] if project.startswith("file://") else project
    if "://" in path:
        return None
    return path


def needs_checkout(link: MlemLink) -> bool:
    """Whether following ``link`` needs a git checkout (a ``rev`` or a git URL).

    Example:
        >>> needs_checkout(MlemLink(path="rf.mlem", project="https://github.com/o/r"))
        True
    """
    if link.rev is not None:
        return True
    return link.project is not None and _is_git_url(link.project)


def project_root(folder: str, fs: Any = None) -> str | None:
    """The nearest folder at or above ``folder`` holding a ``.mlem.yaml``, or ``None``.

    Example:
        >>> project_root("/") is None
        True
    """
    if fs is None:
        from mlem_lib.storage import get_fs

        fs, folder = get_fs(folder)
    current = folder.rstrip("/") or "/"
    for _ in range(64):
        if fs.exists(posixpath.join(current, PROJECT_MARKER)):
            return current
        parent = posixpath.dirname(current)
        if parent == current:
            return None
        current = parent
    return None


def _with_protocol(fs: Any, path: str, like: str) -> str:
    """``path`` on ``fs`` spelled as a URL when ``like`` was one."""
    if "://" not in like or like.startswith("file://"):
        return path
    return str(fs.unstrip_protocol(path))


def target(link_meta_url: str, link: MlemLink) -> str:
    """The path or URL of the object ``link`` (read from ``link_meta_url``) points at.

    Raises:
        MetadataError: the link needs a git checkout (see :func:`followed`).

    Example:
        >>> target("/proj/sub/latest.mlem", MlemLink(path="/models/rf.mlem"))
        '/models/rf.mlem'
    """
    if needs_checkout(link):
        raise MetadataError(
            f"{link_meta_url} links into git ({link.project or 'this repository'} at "
            f"{link.rev or 'its default branch'}): open it with mlem_lib.api.load/load_meta "
            "or the CLI, which check that revision out")
    if link.project is not None:
        local = _local_project(link.project)
        base = local if local is not None else link.project
        return posixpath.join(base.rstrip("/"), link.path.lstrip("/"))
    if "://" in link.path or posixpath.isabs(link.path) or os.path.isabs(link.path):
        return link.path
    from mlem_lib.storage import get_fs

    fs, meta_path = get_fs(link_meta_url)
    folder = posixpath.dirname(meta_path)
    candidates = []
    root = project_root(folder, fs)
    if root is not None:
        candidates.append(posixpath.join(root, link.path))
    candidates.append(posixpath.normpath(posixpath.join(folder, link.path)))
    for candidate in candidates:
        meta = candidate if candidate.endswith(".mlem") else candidate + ".mlem"
        if fs.exists(meta):
            return _with_protocol(fs, candidate, link_meta_url)
    return _with_protocol(fs, candidates[0], link_meta_url)


def _read_text(url: str) -> tuple[bytes | None, str]:
    from mlem_lib.safeyaml import MAX_METADATA_BYTES
    from mlem_lib.storage import get_fs, split_meta_path

    _, meta_url = split_meta_path(url)
    fs, meta_path = get_fs(meta_url)
    try:
        if fs.size(meta_path) > MAX_METADATA_BYTES:
            return None, meta_url
        return bytes(fs.cat_file(meta_path)), meta_url
    except (FileNotFoundError, IsADirectoryError):
        return None, meta_url


def _object_type(meta_url: str) -> str:
    from mlem_lib.safeyaml import _yaml_load

    text, _ = _read_text(meta_url)
    if text is None:
        raise ObjectNotFoundError(f"nothing to link to at {meta_url}")
    try:
        doc = _yaml_load(text)
    except Exception as exc:
        raise MetadataError(f"{meta_url} is not a MLEM object: {exc}") from None
    kind = doc.get("object_type") if isinstance(doc, dict) else None
    if kind is None and isinstance(doc, dict):
        kind = "model" if ("model_type" in doc or "processors" in doc) else \
            "data" if ("data_type" in doc or "reader" in doc) else None
    if not isinstance(kind, str):
        raise MetadataError(f"{meta_url} is not a MLEM object (no object_type)")
    return kind


def write_link(source: str, name: str, *, absolute: bool = False,
               follow: bool = True) -> tuple[str, MlemLink]:
    """Write ``name.mlem``, a MLEM link to the object at ``source`` (MLEM's layout).

    Args:
        source: the linked object (a path or URL, with or without ``.mlem``).
        name: where the link goes (``latest`` writes ``latest.mlem``).
        absolute: record the absolute path instead of a relative one.
        follow: when ``source`` is itself a link, link to what it points at (MLEM's
            default), not to the link.

    Returns:
        The link file's path and its content.

    Raises:
        ObjectNotFoundError: nothing is saved at ``source``.

    Example:
        >>> write_link("models/rf", "latest")  # doctest: +SKIP
        ('latest.mlem', MlemLink(object_type='link', path='models/rf.mlem', ...))
    """
    from mlem_lib.storage import split_meta_path

    _, link_meta = split_meta_path(name)
    resolved = source
    for _ in range(MAX_HOPS if follow else 0):
        text, meta_url = _read_text(resolved)
        found = parse(text, meta_url) if text is not None else None
        if found is None:
            break
        if needs_checkout(found):  # the same git target, written again
            _write(link_meta, found.model_dump(exclude_none=True))
            return link_meta, found
        resolved = target(meta_url, found)
    _, src_meta = split_meta_path(resolved)
    kind = _object_type(src_meta)
    _, link_meta = split_meta_path(name)
    if "://" in src_meta and not src_meta.startswith("file://"):
        path = src_meta
    else:
        src_abs = os.path.abspath(src_meta.removeprefix("file://"))
        link_abs = os.path.abspath(link_meta)
        root = project_root(os.path.dirname(link_abs))
        if absolute:
            path = src_abs
        elif root is not None and (src_abs + "/").startswith(root.rstrip("/") + "/"):
            path = os.path.relpath(src_abs, root)
        else:
            path = os.path.relpath(src_abs, os.path.dirname(link_abs))
        path = path.replace(os.sep, "/")
    link = MlemLink(path=path, link_type=kind)
    _write(link_meta, {"link_type": kind, "object_type": "link", "path": path})
    return link_meta, link


def _write(link_meta: str, content: dict[str, Any]) -> None:
    from mlem_lib import yamltext

    os.makedirs(os.path.dirname(os.path.abspath(link_meta)), exist_ok=True)
    with open(link_meta, "w") as f:
        f.write(yamltext.dump(content))
