"""``package_model``: a pip package and/or a docker image for a model version or stage.

A stage reference (``iris#prod``) is first pinned to the version it points at, so
packages are named after a real version. Builds are cached on the model's hash
and options: rerunning for an unchanged model costs a cache look-up (the cached
wheel or image is checked to still exist, and rebuilt when it does not).

Example:
    >>> from mlem_lib.prefect.flows.params import PackageRequest
    >>> package_model(PackageRequest(model="iris#prod", repo="ws", docker=True))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow
from pydantic import BaseModel

from mlem_lib.prefect.flows.params import PackageRequest
from mlem_lib.prefect.flows.references import image_tag, model_name, split_reference
from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.tasks.build import build_docker_image, build_pip_package, push_image


class PackageResult(BaseModel):
    """What ``package_model`` built: the pinned model reference and each package."""

    model: str
    version: str | None = None
    pip: Any = None
    docker: Any = None
    pushed_digest: str | None = None


def pin_reference(model: str, repo: str) -> tuple[str, str | None]:
    """``(reference, version)``: ``name#stage`` and ``name@latest`` become ``name@vX.Y.Z``.

    Raises:
        VersionNotFoundError: the stage holds no version or the model has none.

    Example:
        >>> pin_reference("iris#prod", "ws")  # doctest: +SKIP
        ('iris@v0.0.2', 'v0.0.2')
    """
    import mlem_lib.api as mlem
    from mlem_lib.errors import VersionNotFoundError

    ref = split_reference(model)
    if ref is None:
        return model, None
    name, sep, spec = ref
    if sep == "@" and spec != "latest":
        return model, spec
    version = (mlem.find_stage_version(name, spec, repo=repo) if sep == "#"
               else mlem.find_latest_version(name, repo=repo))
    if version is None:
        what = f"stage {spec!r}" if sep == "#" else "any version"
        raise VersionNotFoundError(f"model {name!r} has no version in {what} (registry {repo})")
    return f"{name}@{version}", version


def _image_exists(image_id: str) -> bool:
    from mlem_lib.build.docker import docker_client

    try:
        docker_client().images.get(image_id)
    except Exception:  # NotFound, or the engine went away: build again and report
        return False
    return True


def _password(secret_block: str | None) -> str | None:
    if not secret_block:
        return None
    from prefect.blocks.system import Secret

    value = Secret.load(secret_block).get()  # type: ignore[union-attr]
    return str(value)


@flow(name="package-model", log_prints=True)
def package_model(request: PackageRequest) -> PackageResult:
    """Build the requested packages for a model path, version or stage reference.

    Args:
        request: the model (a path, ``rf@v1.2.0``, ``rf@latest`` or ``rf#prod``) and what
            to build from it: a pip package, a docker image, where to push the image.

    Returns:
        A :class:`PackageResult` with the pinned reference, ``PipPackage`` and/or
        ``DockerImage``, and the pushed digest.
    """
    logger = run_logger()
    model, version = pin_reference(request.model, request.repo)
    repo = request.repo if split_reference(model) else None
    result = PackageResult(model=model, version=version)
    if request.pip:
        target = os.path.abspath(request.target)
        package: Any = build_pip_package(model, target=target, version=version, repo=repo)
        if not os.path.exists(package.wheel):
            logger.info("cached wheel %s is gone: building again", package.wheel)
            package = build_pip_package.with_options(refresh_cache=True)(
                model, target=target, version=version, repo=repo)
        result.pip = package
    if request.docker:
        image = request.image or image_tag(model_name(model), version)
        built: Any = build_docker_image(model, image=image, base=request.base, repo=repo)
        if not _image_exists(built.image_id):
            logger.info("cached image %s is gone from the engine: building again", image)
            built = build_docker_image.with_options(refresh_cache=True)(
                model, image=image, base=request.base, repo=repo)
        result.docker = built
        if request.push_to:
            result.pushed_digest = push_image(image, request.push_to,
                                              request.registry_username,
                                              _password(request.registry_password_secret))
    return result
