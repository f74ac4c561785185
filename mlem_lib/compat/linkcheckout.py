"""Following MLEM links, with git checkouts for links into other revisions or projects.

Separate from :mod:`mlem_lib.compat.links` (which :mod:`mlem_lib.mlemfile` uses for plain
links) because a checkout goes through the registry, which reads ``.mlem`` files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from mlem_lib.compat.links import (
    MAX_HOPS,
    MlemLink,
    _local_project,
    _read_text,
    needs_checkout,
    parse,
    target,
)
from mlem_lib.errors import MetadataError

__all__ = ["followed", "followed_link"]


def _checkout(link: MlemLink, link_meta_url: str, stack: ExitStack) -> str:
    """Materialise the linked object from git into a temporary folder; returns its path."""
    from mlem_lib.registry import git
    from mlem_lib.registry.checkout import local_repo, materialise

    if link.project is not None:
        local = _local_project(link.project)
        repo = local if local is not None and os.path.isdir(local) else link.project
    else:  # a rev of the repository holding the link
        from mlem_lib.storage import get_fs, is_local

        fs, meta_path = get_fs(link_meta_url)
        if not is_local(fs):
            raise MetadataError(f"{link_meta_url} gives a rev without a project, which only "
                                "works for links inside a local git repository")
        repo = git.toplevel(os.path.dirname(meta_path) or ".")
    root = stack.enter_context(local_repo(repo))
    rel = link.path.lstrip("/")
    rel = rel if rel.endswith(".mlem") else rel + ".mlem"
    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="mlem-link-"))
    return materialise(root, link.rev or "HEAD", rel, tmp)


@contextmanager
def followed(path: str) -> Iterator[str]:
    """Yield the path of the object ``path`` names, following links (with checkouts).

    Non-links are yielded as they are; git checkouts made for links live as long as the
    context.

    Raises:
        MetadataError: a cycle of links, or more than :data:`MAX_HOPS` in a row.

    Example:
        >>> with followed("memory://not/saved") as found:
        ...     print(found)
        memory://not/saved
    """
    with ExitStack() as stack:
        seen: list[str] = []
        current = path
        while True:
            text, meta_url = _read_text(current)
            link = parse(text, meta_url) if text is not None else None
            if link is None:
                yield current
                return
            if meta_url in seen:
                raise MetadataError(f"links form a cycle: {' -> '.join([*seen, meta_url])}")
            seen.append(meta_url)
            if len(seen) > MAX_HOPS:
                raise MetadataError(f"{path}: more than {MAX_HOPS} links in a row")
            current = _checkout(link, meta_url, stack) if needs_checkout(link) \
                else target(meta_url, link)


@contextmanager
def followed_link(link: MlemLink, source: str) -> Iterator[str]:
    """Yield the path of the object ``link`` names, as if it were read from ``source``.

    For links written inside other files (a deployment's ``env:``, a state's
    ``model_link``): relative paths follow the same rules as a link file at ``source``.

    Example:
        >>> with followed_link(MlemLink(path="/models/rf.mlem"), "/proj/app.mlem") as p:
        ...     print(p)
        /models/rf.mlem
    """
    with ExitStack() as stack:
        first = _checkout(link, source, stack) if needs_checkout(link) \
            else target(source, link)
        with followed(first) as final:
            yield final
