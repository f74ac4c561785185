"""Copying a saved model (its ``.mlem`` file and artifacts) for a deployment.

Targets need the model's files somewhere they control: the local process
runtime keeps a copy per model hash (so a rollback still has the old model
after the source path was overwritten), SageMaker wants one ``model.tar.gz``
with the ``.mlem`` file named ``model.mlem`` at its root.

Example:
    >>> import tempfile
    >>> import mlem_lib.api as mlem
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = mlem.save(lambda xs: [x + 1 for x in xs], f"{tmp}/inc", sample_data=[1])
    ...     meta, path = copy_model(f"{tmp}/inc", f"{tmp}/deploy")
    ...     print(path == f"{tmp}/deploy/model", sorted(os.listdir(f"{tmp}/deploy")))
    True ['inc', 'model.mlem']
"""

from __future__ import annotations

import os
import tarfile

from mlem_lib.locate import read_model_meta
from mlem_lib.meta import ModelMeta

__all__ = ["copy_model", "model_tarball", "read_model_meta"]


def copy_model(model: str, dest_dir: str, repo: str | None = None) -> tuple[ModelMeta, str]:
    """Copy a saved model into ``dest_dir`` as ``model.mlem`` plus its artifacts.

    The files are those :func:`mlem_lib.build.model_files.collect` gathers for packaging:
    the ``.mlem`` file byte for byte, artifacts checked against their recorded size and
    hash, at their relative paths.

    Returns:
        (the model's metadata, the copy's path without ``.mlem``)

    Raises:
        BuildError: ``model`` is a data object.
    """
    from mlem_lib.build.model_files import MODEL_NAME, collect

    bundle = collect(model, repo)
    for rel, body in bundle.files.items():
        dst = os.path.join(dest_dir, *rel.split("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(body)
    return bundle.meta, os.path.join(dest_dir, MODEL_NAME)


def model_tarball(model: str, out_path: str, repo: str | None = None) -> ModelMeta:
    """Write ``model.tar.gz``: ``model.mlem`` and the artifacts at the archive's root.

    Example:
        >>> meta = model_tarball("models/rf", "model.tar.gz")
        >>> import tarfile; sorted(tarfile.open("model.tar.gz").getnames())
        ['model.mlem', 'rf']
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlem-tar-") as tmp:
        meta, _ = copy_model(model, tmp, repo=repo)
        with tarfile.open(out_path, "w:gz") as tar:
            for entry in sorted(os.listdir(tmp)):
                tar.add(os.path.join(tmp, entry), arcname=entry)
    return meta
