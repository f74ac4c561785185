"""From what a user typed (a path, a URL or a registry reference) to a model that can be read.

This is the one place that knows what a registry reference looks like and what it
points at. The grammar is GTO's shortcut syntax:

* ``NAME@vX.Y.Z`` (``NAME@1.2.3`` is read as ``v1.2.3``): a registered version;
* ``NAME@latest`` (or ``NAME@greatest``): the greatest registered version;
* ``NAME#STAGE``: the version a stage holds now;
* a bare ``NAME`` that is not a path but a registered model: ``NAME@latest`` (MLEM's
  ``mlem apply rf data.csv``).

``NAME`` follows GTO's rule: letters, digits, ``-``, ``_`` and ``/`` (``nlp/sentiment``
is a name), starting and ending with a letter or digit. Text that names an existing
file or folder (with or without ``.mlem``), or a URL, is a path, never a reference. A
path may be a MLEM link (``object_type: link``): it is followed, with a git checkout
when it points at another revision or repository.

Functions:

* :func:`parse_reference` / :func:`as_reference`: the parser;
* :func:`resolve_version`: the resolver (reference -> version, commit, ``.mlem`` path);
* :func:`checkout`: a local folder holding exactly that version (git + DVC);
* :func:`open_object` / :func:`read_meta` / :func:`read_model_meta`: "resolve, then
  read the ``.mlem``", used by ``load``, ``load_meta``, the runner, builders and deploys.

Example:
    >>> parse_reference("nlp/sentiment@v1.2.0")
    Reference(name='nlp/sentiment', version='v1.2.0', stage=None)
    >>> str(parse_reference("rf#prod")), parse_reference("rf@latest").pinned
    ('rf#prod', False)
    >>> as_reference("models/rf.mlem") is None, as_reference("s3://bucket/rf@v1.0.0") is None
    (True, True)
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from mlem_lib.errors import MetadataError, RegistryError, VersionNotFoundError

if TYPE_CHECKING:
    from mlem_lib.meta import DataMeta, ModelMeta
    from mlem_lib.registry.models import RegisteredVersion

__all__ = ["Located", "Reference", "as_reference", "checkout", "is_registry_reference",
           "open_object", "parse_reference", "read_meta", "read_model_meta",
           "registered_name", "resolve_reference", "resolve_version"]

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_/-]*[A-Za-z0-9])?"
_SEMVER = (r"v?\d+\.\d+\.\d+(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
           r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?")
_REFERENCE = re.compile(
    rf"^(?P<name>{_NAME})(?:@(?P<version>latest|greatest|{_SEMVER})|#(?P<stage>{_NAME}))$")
_USAGE = "use NAME@vX.Y.Z, NAME@latest or NAME#STAGE"


class Reference(NamedTuple):
    """A parsed registry reference.

    Attributes:
        name: the model's registry name (GTO artifact name).
        version: ``vX.Y.Z``, ``latest``, or ``None`` for a stage reference.
        stage: the stage, or ``None`` for a version reference.
    """

    name: str
    version: str | None = None
    stage: str | None = None

    def __str__(self) -> str:
        return f"{self.name}#{self.stage}" if self.stage else f"{self.name}@{self.version}"

    @property
    def pinned(self) -> bool:
        """True for ``NAME@vX.Y.Z`` (a fixed version), False for ``latest`` and stages."""
        return self.stage is None and self.version not in (None, "latest")


def parse_reference(text: str) -> Reference:
    """Parse ``NAME@vX.Y.Z``, ``NAME@latest`` or ``NAME#STAGE``.

    Raises:
        RegistryError: the text is not a registry reference.

    Example:
        >>> parse_reference("rf@1.0.0"), parse_reference("rf@greatest").version
        (Reference(name='rf', version='v1.0.0', stage=None), 'latest')
    """
    match = _REFERENCE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise RegistryError(f"{text!r} is not a registry reference: {_USAGE}")
    version = match["version"]
    if version == "greatest":
        version = "latest"
    elif version is not None and version != "latest" and not version.startswith("v"):
        version = "v" + version
    return Reference(match["name"], version, match["stage"])


def _exists_locally(text: str) -> bool:
    return os.path.exists(text) or os.path.exists(text + ".mlem")


def as_reference(text: str) -> Reference | None:
    """The reference ``text`` names, or ``None`` when it is a path or a URL.

    An existing file or folder (``text`` or ``text.mlem``) is always a path.

    Example:
        >>> as_reference("rf#prod"), as_reference("models/rf")
        (Reference(name='rf', version=None, stage='prod'), None)
    """
    if not isinstance(text, str) or "://" in text or _exists_locally(text):
        return None
    try:
        return parse_reference(text)
    except RegistryError:
        return None


def is_registry_reference(text: str) -> bool:
    """``rf@v1.2.0``, ``rf@latest`` or ``rf#prod`` (and not a path that exists).

    Example:
        >>> is_registry_reference("rf@v1.2.0"), is_registry_reference("models/rf")
        (True, False)
    """
    return as_reference(text) is not None


@contextmanager
def _repository(repo: str | None) -> Iterator[str]:
    from mlem_lib.extras import need

    need("registry", "registry references (name@version, name#stage)")
    from mlem_lib.registry.checkout import local_repo

    with local_repo(repo) as root:
        yield root


def _resolve_in(root: str, ref: Reference) -> RegisteredVersion:
    from mlem_lib.registry import tags
    from mlem_lib.registry.models import RegisteredVersion
    from mlem_lib.registry.paths import model_meta_path

    name = ref.name
    if ref.stage is not None:
        found = tags.in_stage(root, name, ref.stage)
        if found is None:
            raise VersionNotFoundError(f"no version of {name!r} is in stage {ref.stage!r}")
        version, commit, _ = found
    elif ref.version == "latest":
        latest = tags.latest(root, name)
        if latest is None:
            raise VersionNotFoundError(f"model {name!r} has no registered version")
        version, commit = latest
    else:
        assert ref.version is not None
        known = tags.versions(root, name)
        if ref.version not in known:
            raise VersionNotFoundError(f"model {name!r} has no version {ref.version} "
                                       f"(registered: {', '.join(known) or 'none'})")
        version, commit = ref.version, known[ref.version]
    return RegisteredVersion(name=name, version=version, tag=f"{name}@{version}",
                             commit=commit,
                             path=model_meta_path(root, commit, name)[: -len(".mlem")])


def resolve_version(ref: str | Reference, repo: str | None = None) -> RegisteredVersion:
    """The version, commit and ``.mlem`` path a reference points at now.

    Args:
        ref: a reference (text or parsed).
        repo: the registry: a local git repository (default: the current directory's)
            or a git URL (cloned into a temporary folder).

    Raises:
        RegistryError: ``ref`` is not a reference.
        UnknownModelError: no such model.
        VersionNotFoundError: no such version, nothing in that stage, none registered.

    Example:
        >>> resolve_version("rf#prod", repo="registry").tag  # doctest: +SKIP
        'rf@v1.2.0'
    """
    parsed = ref if isinstance(ref, Reference) else parse_reference(ref)
    with _repository(repo) as root:
        return _resolve_in(root, parsed)


_BARE_NAME = re.compile(rf"^{_NAME}$")


def registered_name(text: str, repo: str | None = None) -> Reference | None:
    """``NAME@latest`` when ``text`` is a bare registry name and no such path exists.

    ``mlem apply rf data.csv`` in a registry repository then means the latest version
    of ``rf``, as in MLEM. A path that exists always wins; a name the registry does not
    know gives ``None``.

    Example:
        >>> registered_name("models/rf.mlem") is None  # not a bare name
        True
    """
    if (not isinstance(text, str) or "://" in text or not _BARE_NAME.match(text)
            or _exists_locally(text)):
        return None
    from mlem_lib.registry import tags

    try:
        with _repository(repo) as root:
            found = tags.latest(root, text)
    except RegistryError:  # not a git repository, or no model of that name
        return None
    return Reference(text, "latest") if found is not None else None


@contextmanager
def _materialised(path: str, repo: str | None
                  ) -> Iterator[tuple[str, Reference | None, RegisteredVersion | None]]:
    ref = as_reference(path)
    if ref is None:
        ref = registered_name(path, repo)
    if ref is None:
        from mlem_lib.compat.linkcheckout import followed

        with followed(path) as local:  # MLEM links, checked out when they point into git
            yield local, None, None
        return
    from mlem_lib.registry.checkout import materialise

    with _repository(repo) as root:
        found = _resolve_in(root, ref)
        assert found.path is not None
        with tempfile.TemporaryDirectory(prefix="mlem-registry-") as tmp:
            yield materialise(root, found.commit, found.path + ".mlem", tmp), ref, found


@contextmanager
def checkout(path: str, repo: str | None = None) -> Iterator[str]:
    """Yield a path :mod:`mlem_lib.mlemfile` can read for ``path``.

    Paths and URLs are yielded as they are. A registry reference is resolved and its
    ``.mlem`` file and artifacts (from git, or through DVC) are written to a temporary
    folder that lives as long as the context.

    Example:
        >>> with checkout("rf#prod", repo="registry") as local:  # doctest: +SKIP
        ...     print(local)
        /tmp/mlem-registry-.../rf
    """
    with _materialised(path, repo) as (local, _, _):
        yield local


# the name this context manager had before references were resolved here
resolve_reference = checkout


@dataclass(frozen=True)
class Located:
    """A saved object that was found and whose ``.mlem`` file was read.

    Attributes:
        meta: the parsed metadata.
        fs: the fsspec filesystem holding it.
        meta_path: the ``.mlem`` file's path on ``fs``.
        path: the readable path without ``.mlem`` (a temporary checkout for references).
        reference: the registry reference, when one was given.
        version: the registry version it resolved to (``None`` for paths).
    """

    meta: ModelMeta | DataMeta
    fs: Any
    meta_path: str
    path: str
    reference: Reference | None = None
    version: str | None = None


@contextmanager
def open_object(path: str, repo: str | None = None) -> Iterator[Located]:
    """Resolve ``path`` (checking a reference out) and read its ``.mlem`` file.

    The object's files stay readable for as long as the context lives.

    Raises:
        ObjectNotFoundError: nothing is saved there.
        MetadataError: the ``.mlem`` file is not valid.
        RegistryError: a reference that does not resolve.

    Example:
        >>> with open_object("models/rf") as found:  # doctest: +SKIP
        ...     print(found.meta.model_type.type, found.meta_path)
        sklearn models/rf.mlem
    """
    from mlem_lib import mlemfile

    with _materialised(path, repo) as (local, ref, found):
        meta, fs, meta_path = mlemfile.read(local)
        yield Located(meta=meta, fs=fs, meta_path=meta_path, path=local, reference=ref,
                      version=found.version if found is not None else None)


def load_found(found: Located, check_requirements: bool = True, device: str | None = None
               ) -> tuple[ModelMeta | DataMeta, Any]:
    """Rebuild the object ``found`` holds, with the metadata that matches what was loaded.

    ``device``: where a deep-learning model is loaded (see :func:`mlem_lib.objects.load_object`).

    A save that finishes between reading the ``.mlem`` file and reading the artifact
    replaces the artifact under the reader: its hash no longer matches the metadata read
    a moment before. The metadata is then read again and the load retried (three
    attempts in all: saves to one path may alternate between the same two models, so an
    unchanged ``.mlem`` does not prove the artifact was tampered with); an artifact that
    still does not match raises :class:`ArtifactIntegrityError`.

    Example:
        >>> with open_object("models/rf") as found:  # doctest: +SKIP
        ...     meta, model = load_found(found)
    """
    from mlem_lib import mlemfile
    from mlem_lib.errors import ArtifactIntegrityError
    from mlem_lib.objects import load_object

    meta, fs, meta_path = found.meta, found.fs, found.meta_path
    for attempt in range(3):
        try:
            return meta, load_object(meta, fs, meta_path, check_requirements, device)
        except ArtifactIntegrityError:
            if attempt == 2:
                raise
            meta, fs, meta_path = mlemfile.read(found.path)
    raise AssertionError("unreachable")


def read_meta(path: str, repo: str | None = None) -> ModelMeta | DataMeta:
    """The metadata of the object at ``path`` (a path, URL or reference); nothing unpickled.

    Example:
        >>> read_meta("models/rf").model_type.type
        'sklearn'
    """
    with open_object(path, repo) as found:
        return found.meta


def read_model_meta(path: str, repo: str | None = None) -> ModelMeta:
    """Like :func:`read_meta`, for a model.

    Raises:
        MetadataError: ``path`` holds a data object.
    """
    meta = read_meta(path, repo)
    return require_model(meta, path)


def require_model(meta: ModelMeta | DataMeta, path: str) -> ModelMeta:
    """``meta`` if it describes a model.

    Raises:
        MetadataError: it describes a data object.
    """
    from mlem_lib.meta import ModelMeta

    if not isinstance(meta, ModelMeta):
        raise MetadataError(f"{path} is a data object, not a model")
    return meta
