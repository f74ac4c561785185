"""Tasks over the git-native model registry (GTO tags, binaries in DVC).

Example:
    >>> version = register_version("models/rf", repo="demo-workspace")  # doctest: +SKIP
    >>> assign_stage(version.name, "prod", version=version.version,
    ...              repo="demo-workspace")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE

from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.retry import retry_if_transient

if TYPE_CHECKING:
    from mlem_lib.registry.models import RegisteredVersion, StageAssignment


# Pushing to the DVC remote is the network part; registry errors never get retried.
@task(retries=1, retry_delay_seconds=5, retry_condition_fn=retry_if_transient,
      cache_policy=NO_CACHE, task_run_name="register-{model_path}")
def register_version(model_path: str, *, name: str | None = None, version: str | None = None,
                     bump: Literal["patch", "minor", "major"] | None = None, repo: str = ".",
                     push: bool = True, message: str | None = None,
                     metrics: dict[str, Any] | None = None,
                     plots: str | list[str] | None = None) -> RegisteredVersion:
    """Commit a saved model, tag it ``name@vX.Y.Z`` and push its binary with DVC.

    ``metrics`` and ``plots`` (a folder or files) are committed with the version and
    named in the tag (``mlem registry show name@vX.Y.Z`` prints them).

    Args:
        model_path: the saved model, relative to ``repo`` (or absolute inside it).
        name: the registry name (default: the file name).
        version: an explicit version (``v1.2.0``); default: bump the latest.
        bump: which part to bump when ``version`` is not given (default: patch).
        repo: the git repository that is the registry.
        push: push the binary to the DVC remote (and git, when it has a remote).
        message: the tag's message.

    Example:
        >>> register_version.fn("models/rf", repo="ws").tag  # doctest: +SKIP
        'rf@v0.0.1'
    """
    import mlem_lib.api as mlem

    registered = mlem.register(model_path, name=name, version=version,
                               bump=None if version else bump, repo=repo, push=push,
                               message=message, metrics=metrics or None, plots=plots)
    run_logger().info("registered %s at commit %s", registered.tag, registered.commit[:8])
    return registered


@task(retry_condition_fn=retry_if_transient, cache_policy=NO_CACHE,
      task_run_name="assign-{name}-{stage}")
def assign_stage(name: str, stage: str, *, version: str | None = None,
                 repo: str = ".") -> StageAssignment:
    """Promote a version (default: the latest) to a stage such as ``prod``.

    Example:
        >>> assign_stage.fn("rf", "prod", version="v0.0.1", repo="ws").tag  # doctest: +SKIP
        'rf#prod#1'
    """
    import mlem_lib.api as mlem

    assignment = mlem.assign(name, stage, version=version, repo=repo)
    run_logger().info("%s %s is now at stage %s (%s)", name, assignment.version, stage,
                          assignment.tag)
    return assignment


@task(cache_policy=NO_CACHE, task_run_name="find-{name}-{stage}")
def find_stage_version(name: str, stage: str, *, repo: str = ".") -> str | None:
    """The version currently at ``stage`` (``None`` when no version is there).

    Example:
        >>> find_stage_version.fn("rf", "prod", repo="ws")  # doctest: +SKIP
        'v0.0.1'
    """
    import mlem_lib.api as mlem

    found = mlem.find_stage_version(name, stage, repo=repo)
    run_logger().info("%s#%s -> %s", name, stage, found or "no version")
    return found


@task(cache_policy=NO_CACHE, task_run_name="resolve-{model}")
def resolve_version(model: str, *, repo: str = ".") -> RegisteredVersion | None:
    """The version a registry reference points at now; ``None`` when ``model`` is a path.

    ``rf#prod`` and ``rf@latest`` are pinned to the version they hold (``rf@v1.2.0``), so
    what follows (a package, a rollout, a promotion) all use that one version.

    Raises:
        VersionNotFoundError: the stage holds no version, or the model has none.

    Example:
        >>> resolve_version.fn("models/rf") is None
        True
        >>> resolve_version.fn("rf#prod", repo="ws").tag  # doctest: +SKIP
        'rf@v1.2.0'
    """
    from mlem_lib import locate

    reference = locate.as_reference(model)
    if reference is None:
        return None
    found = locate.resolve_version(reference, repo)
    run_logger().info("%s -> %s (commit %s)", model, found.tag, found.commit[:8])
    return found
