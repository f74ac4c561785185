"""Packaging saved models: a pip package, a Docker build context, a Docker image, or a
plugin's build kind.

Each kind is a :class:`~mlem_lib.build.base.Builder` registered in the ``builders``
plugin group: :mod:`~mlem_lib.build.pip`, :mod:`~mlem_lib.build.dockerfile` (the
context) and :mod:`~mlem_lib.build.docker` (the SDK build and push) hold the builtin
ones. :func:`build` finds the builder by name and validates the options with its
``Options`` model.

Example:
    >>> import os
    >>> ctx = build("models/rf", "docker-dir", {"target": "build/ctx"})
    >>> os.path.relpath(ctx.dockerfile)
    'build/ctx/Dockerfile'
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from mlem_lib.build.base import Builder, BuildOptions, BuildProgress, builder

__all__ = ["BuildOptions", "Builder", "build", "builder", "kinds"]


def kinds() -> list[str]:
    """The registered build kinds.

    Example:
        >>> kinds()[:3]
        ['docker', 'docker-dir', 'onnx']
    """
    from mlem_lib import plugins

    return plugins.names("builders")


def build(model: str, kind: str, options: BuildOptions | Mapping[str, object] | None = None,
          *, repo: str | None = None, progress: BuildProgress = None) -> BaseModel:
    """Build ``model`` as ``kind`` (``pip``, ``docker``, ``docker-dir`` or a plugin's).

    Args:
        model: the saved model's path, URL or registry reference.
        kind: the build kind.
        options: the builder's options (its ``Options`` model, or a mapping validated by it).
        repo: the git repository holding a registry reference.
        progress: receives build output lines (default: the ``mlem_lib.build`` logger).

    Returns:
        The builder's result: :class:`~mlem_lib.build.pip.PipPackage`,
        :class:`~mlem_lib.build.docker.DockerImage`,
        :class:`~mlem_lib.build.dockerfile.DockerContext` or a plugin's model.

    Raises:
        BuildError: an unknown kind, or an option the builder does not take or a bad
            value (the message names the option), or the build itself failed.

    Example:
        >>> import os
        >>> pkg = build("models/rf", "pip", {"target": "build/", "package_name": "iris-rf"},
        ...             progress=False)
        >>> os.path.relpath(pkg.wheel)
        'build/iris_rf-0.1.0-py3-none-any.whl'
    """
    result: BaseModel = builder(kind).run(model, options, repo=repo, progress=progress)
    return result
