"""Tasks that package a saved model: a pip package, a docker image, an image push.

Builds are cached on the model's hash and the build options, so rerunning a
flow for an unchanged model reuses the previous package or image instead of
building it again (results are persisted to Prefect's result storage).

Example:
    >>> from prefect import flow
    >>> @flow
    ... def package():
    ...     image = build_docker_image("models/rf", image="iris-rf:latest")  # doctest: +SKIP
    ...     push_image(image.tags[0], registry="127.0.0.1:5055")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE, TASK_SOURCE, CacheKeyFnPolicy
from pydantic import SecretStr

from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.retry import retry_if_transient

if TYPE_CHECKING:
    from prefect.context import TaskRunContext


def model_build_key(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    """Cache key of a build: the task, the model's content hash and every other option.

    The model is named by path or registry reference; its hash (not its name) goes into
    the key, so saving a new model at the same path builds again. When the model cannot
    be read, there is no key and the task runs (and reports the real error).

    Example:
        >>> model_build_key(None, {"model": "no/such/model"}) is None  # doctest: +SKIP
        True
    """
    from prefect.utilities.hashing import hash_objects

    import mlem_lib.api as mlem
    from mlem_lib.errors import MlemError

    try:
        meta = mlem.load_meta(parameters["model"], repo=parameters.get("repo"))
    except (MlemError, OSError):
        return None
    model_hash = getattr(meta, "model_hash", "")
    if not model_hash:
        return None
    options = {k: v for k, v in parameters.items() if k not in ("model", "repo")}
    name = context.task.name if context is not None else "build"
    return hash_objects(name, model_hash, options)


BUILD_CACHE = TASK_SOURCE + CacheKeyFnPolicy(cache_key_fn=model_build_key)


def _options(extra: dict[str, Any] | None, **named: Any) -> dict[str, Any]:
    options = {k: v for k, v in named.items() if v is not None}
    options.update(extra or {})
    return options


@task(cache_policy=BUILD_CACHE, persist_result=True, retry_condition_fn=retry_if_transient,
      task_run_name="build-pip-{model}")
def build_pip_package(model: str, target: str = "build/", package_name: str | None = None,
                      version: str | None = None, repo: str | None = None,
                      options: dict[str, Any] | None = None) -> Any:
    """Build an sdist and a wheel that ship the model and a ``predict`` entry point.

    Args:
        model: a saved model path or a registry reference (``rf@v1.0.0``, ``rf#prod``).
        target: the output folder.
        package_name: the distribution name (default: derived from the model name).
        version: the package version (PEP 440, default ``0.1.0``); a leading ``v`` is dropped.
        repo: the registry repository for a reference.
        options: more options of ``mlem_lib.api.build(model, "pip", ...)``.

    Returns:
        A ``PipPackage`` (``name``, ``version``, ``sdist``, ``wheel``).

    Example:
        >>> build_pip_package.fn("models/rf", target="dist").wheel  # doctest: +SKIP
        'dist/mlem_model_rf-0.1.0-py3-none-any.whl'
    """
    import mlem_lib.api as mlem

    logger = run_logger()
    logger.info("building a pip package of %s into %s", model, target)
    version = version[1:] if version and version.startswith("v") else version
    package = mlem.build(model, "pip", _options(options, target=target,
                                                package_name=package_name, version=version),
                         repo=repo)
    logger.info("built %s %s: %s", package.name, package.version, package.wheel)
    return package


@task(cache_policy=BUILD_CACHE, persist_result=True, retry_condition_fn=retry_if_transient,
      task_run_name="build-docker-{image}")
def build_docker_image(model: str, image: str, base: str | None = None,
                       repo: str | None = None, options: dict[str, Any] | None = None) -> Any:
    """Build a docker image that serves the model (``docker run IMAGE`` answers on 8080).

    Args:
        model: a saved model path or a registry reference.
        image: the image name and tag, e.g. ``iris-rf:1.0``.
        base: the base image (default: the builder's, ``python:3.11-slim``).
        repo: the registry repository for a reference.
        options: more options of ``mlem_lib.api.build(model, "docker", ...)``.

    Returns:
        A ``DockerImage`` (``image_id``, ``tags``, ``digest``, ``repo_digest``).

    Example:
        >>> build_docker_image.fn("models/rf", image="iris-rf:1.0").tags  # doctest: +SKIP
        ['iris-rf:1.0']
    """
    import mlem_lib.api as mlem

    logger = run_logger()
    logger.info("building docker image %s for %s", image, model)
    def progress(line: str) -> None:
        if line.startswith(("Step ", "Successfully")):  # the rest is pip's chatter
            logger.info(line.rstrip())

    built = mlem.build(model, "docker", _options(options, image=image, base=base),
                       repo=repo, progress=progress)
    logger.info("built %s (%s)", ", ".join(built.tags) or image, built.image_id[:19])
    return built


@task(cache_policy=NO_CACHE, retry_condition_fn=retry_if_transient,
      task_run_name="build-{kind}-{model}")
def build_model(model: str, kind: str, options: dict[str, Any] | None = None,
                repo: str | None = None) -> Any:
    """Build ``model`` as any registered kind: ``pip``, ``docker``, ``docker-dir`` or a plugin's.

    A plugin's build kind (an entry point in ``mlem_lib.builders``) needs no task of its
    own. Its output is not cached, since only the plugin knows whether it still exists.

    Args:
        model: a saved model path or a registry reference.
        kind: the build kind (``mlem_lib.build.kinds()`` lists them).
        options: the kind's options (its ``Options`` model checks them).
        repo: the registry repository for a reference.

    Returns:
        The builder's result (``PipPackage``, ``DockerImage``... or the plugin's model).

    Example:
        >>> from mlem_lib.errors import BuildError
        >>> try:
        ...     build_model.fn("models/rf", "no-such-kind")
        ... except BuildError as exc:
        ...     print(str(exc).split(" (")[0])
        unknown build kind 'no-such-kind'
    """
    import mlem_lib.api as mlem

    logger = run_logger()
    logger.info("building %s for %s", kind, model)
    built = mlem.build(model, kind, options, repo=repo, progress=logger.info)
    logger.info("built %s for %s", kind, model)
    return built


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_if_transient,
      cache_policy=NO_CACHE, task_run_name="push-{image}")
def push_image(image: str, registry: str, username: str | None = None,
               password: SecretStr | str | None = None) -> str:
    """Push a local image to a registry and return the pushed digest.

    Args:
        image: the local image reference (``iris-rf:1.0``).
        registry: the registry host (``127.0.0.1:5055``, ``registry.heroku.com``...).
        username: registry user (``None``: use the engine's stored login).
        password: registry password or token; a ``SecretStr`` stays masked in logs.

    Example:
        >>> push_image.fn("iris-rf:1.0", "127.0.0.1:5055", "mlem", "pw")  # doctest: +SKIP
        'sha256:...'
    """
    from mlem_lib.build.docker import push_image as _push

    secret = password.get_secret_value() if isinstance(password, SecretStr) else password
    logger = run_logger()
    logger.info("pushing %s to %s", image, registry)
    digest = _push(image, registry, username, secret)
    logger.info("pushed %s: %s", image, digest)
    return digest
