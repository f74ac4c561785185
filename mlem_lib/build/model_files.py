"""Collecting a saved model's files (metadata, verified artifacts, local code) for packaging.

Every builder starts here: the ``.mlem`` file is copied byte for byte (so any
layout MLEM wrote survives) under a fixed name, each artifact is read with its
size and hash checked, and the local source code recorded as ``custom``
requirements is unpacked so packages can ship it as plain files.

Example:
    >>> bundle = collect("models/rf")
    >>> sorted(bundle.files)
    ['model.mlem', 'rf']
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from mlem_lib.errors import BuildError, MetadataError
from mlem_lib.meta import ModelMeta

MODEL_NAME = "model"  # the packaged model is always <folder>/model(.mlem)


@dataclass
class ModelBundle:
    """A model ready to be packaged.

    Attributes:
        meta: its metadata.
        files: relative path -> bytes: ``model.mlem`` plus every artifact under its uri.
        code: relative path -> bytes of local modules the model needs (``helpers.py``).
        version: the registry version when the model was given as ``name@version``.
    """

    meta: ModelMeta
    files: dict[str, bytes]
    code: dict[str, bytes] = field(default_factory=dict)
    version: str | None = None


def collect(model: str, repo: str | None = None) -> ModelBundle:
    """Read a saved model (path, URL or registry reference) into a :class:`ModelBundle`.

    Raises:
        ObjectNotFoundError: nothing is saved there.
        ArtifactIntegrityError: an artifact was truncated or modified.
        BuildError: the path holds a data object, not a model.
    """
    from mlem_lib.locate import open_object
    from mlem_lib.objects import read_artifact_file

    with open_object(model, repo) as found:
        meta, fs, meta_path, version = found.meta, found.fs, found.meta_path, found.version
        if not isinstance(meta, ModelMeta):
            raise BuildError(f"{model} is a data object; only models can be built")
        if not meta.artifacts:
            raise MetadataError(f"{meta_path} lists no artifacts")
        files = {f"{MODEL_NAME}.mlem": fs.cat_file(meta_path)}
        for art in meta.artifacts.values():
            rel = posixpath.normpath(art.uri.replace("\\", "/"))
            if rel == f"{MODEL_NAME}.mlem":
                raise BuildError(f"artifact uri {art.uri!r} collides with the metadata file")
            files[rel] = read_artifact_file(fs, meta_path, art)
    return ModelBundle(meta=meta, files=files, code=local_code(meta), version=version)


def local_code(meta: ModelMeta) -> dict[str, bytes]:
    """The source files of the model's ``custom`` requirements, by relative path."""
    from mlem_lib.requirements import custom_sources

    code: dict[str, bytes] = {}
    for req in meta.custom_requirements():
        for member, data in custom_sources(req).items():
            parts = member.replace("\\", "/").split("/")
            if member.endswith("/") or member.startswith("/") or ".." in parts:
                continue
            code["/".join(parts)] = data
    return code
