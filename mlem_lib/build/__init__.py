"""Packaging saved models: a pip package, a Docker build context, a Docker image.

One module per builder: :mod:`~mlem_lib.build.pip`,
:mod:`~mlem_lib.build.dockerfile` (the context) and :mod:`~mlem_lib.build.docker`
(the SDK build and push). :func:`build` picks one by name.

Example:
    >>> build("models/rf", "docker-dir", target="build/ctx").dockerfile  # doctest: +SKIP
    'build/ctx/Dockerfile'
"""

from __future__ import annotations

from typing import Any

from mlem_lib.errors import BuildError

KINDS = ("pip", "docker", "docker-dir")


def build(model: str, kind: str, **options: Any) -> Any:
    """Build ``model`` as ``kind`` (``pip``, ``docker`` or ``docker-dir``).

    Returns:
        :class:`~mlem_lib.build.pip.PipPackage`,
        :class:`~mlem_lib.build.docker.DockerImage` or
        :class:`~mlem_lib.build.dockerfile.DockerContext`.

    Raises:
        BuildError: an unknown kind or an option the builder does not take.

    Example:
        >>> build("models/rf", "pip", target="build/", package_name="iris-rf")  # doctest: +SKIP
    """
    import inspect

    if kind == "pip":
        from mlem_lib.build.pip import build_pip as builder
    elif kind == "docker-dir":
        from mlem_lib.build.dockerfile import build_docker_dir as builder  # type: ignore[assignment]
    elif kind == "docker":
        from mlem_lib.build.docker import build_docker as builder  # type: ignore[assignment]
    else:
        raise BuildError(f"kind {kind!r} is not one of: {', '.join(KINDS)}")
    accepted = set(inspect.signature(builder).parameters) - {"model"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise BuildError(f"build kind {kind!r} does not take option(s) {', '.join(unknown)} "
                         f"(it takes: {', '.join(sorted(accepted))})")
    return builder(model, **options)
