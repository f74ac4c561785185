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

from mlem_lib.prefect.flows.names import image_tag, model_name
from mlem_lib.prefect.flows.params import PackageRequest
from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.tasks.build import (
    build_docker_image,
    build_model,
    build_pip_package,
    push_image,
)
from mlem_lib.prefect.tasks.registry import resolve_version


class PackageResult(BaseModel):
    """What ``package_model`` built: the pinned model reference and each package."""

    model: str
    version: str | None = None
    pip: Any = None
    docker: Any = None
    pushed_digest: str | None = None
    builds: dict[str, Any] = {}


def _pip_package(model: str, target: str, version: str | None, repo: str | None) -> Any:
    """The pip package: from the build cache, or built again when its wheel is gone."""
    package: Any = build_pip_package(model, target=target, version=version, repo=repo)
    if not os.path.exists(package.wheel):
        run_logger().info("cached wheel %s is gone: building again", package.wheel)
        package = build_pip_package.with_options(refresh_cache=True)(
            model, target=target, version=version, repo=repo)
    return package


def _docker_image(model: str, image: str, base: str | None, repo: str | None) -> Any:
    """The docker image: from the build cache, or built again when the engine lost it."""
    built: Any = build_docker_image(model, image=image, base=base, repo=repo)
    if not _image_exists(built.image_id):
        run_logger().info("cached image %s is gone from the engine: building again", image)
        built = build_docker_image.with_options(refresh_cache=True)(
            model, image=image, base=base, repo=repo)
    return built


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
            to build from it: a pip package, a docker image, where to push the image,
            and other build kinds with their options (``builds``, e.g. a plugin's).

    Returns:
        A :class:`PackageResult` with the pinned reference, ``PipPackage`` and/or
        ``DockerImage``, the pushed digest and the other builds by kind.
    """
    version = resolve_version(request.model, repo=request.repo)  # rf#prod -> rf@v1.2.0
    model = version.tag if version else request.model
    repo = request.repo if version else None
    result = PackageResult(model=model, version=version.version if version else None)
    if request.pip:
        result.pip = _pip_package(model, os.path.abspath(request.target), result.version, repo)
    if request.docker:
        image = request.image or image_tag(model_name(model), result.version)
        result.docker = _docker_image(model, image, request.base, repo)
        if request.push_to:
            result.pushed_digest = push_image(image, request.push_to, request.registry_username,
                                              _password(request.registry_password_secret))
    for kind, options in request.builds.items():
        result.builds[kind] = build_model(model, kind, options, repo=repo)
    return result
