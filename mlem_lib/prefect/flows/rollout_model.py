"""``rollout_model``: deploy a model to a declared target, check it with real rows,
roll back if it does not answer, and promote the version to a stage when it does.

Example:
    >>> from mlem_lib.prefect.flows.params import RolloutRequest
    >>> rollout_model(RolloutRequest(model="iris@v0.0.2", repo="ws",
    ...                              declaration="deployments/local.yaml",
    ...                              stage="prod")).url  # doctest: +SKIP
    'http://127.0.0.1:8080'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel

from mlem_lib.prefect.flows.names import artifact_key
from mlem_lib.prefect.flows.package_model import package_model
from mlem_lib.prefect.flows.params import RolloutRequest
from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.tasks.deploy import (
    deploy_model,
    remove_deployment,
    rollback_deployment,
    smoke_test,
)
from mlem_lib.prefect.tasks.registry import assign_stage, resolve_version

if TYPE_CHECKING:
    from mlem_lib.deploy.state import DeploymentState


class RolloutResult(BaseModel):
    """The outcome of a rollout that passed its smoke test."""

    model: str
    version: str | None = None
    deployment: str
    url: str | None = None
    model_hash: str
    stage: str | None = None
    answer: Any = None


def undo_rollout(state: DeploymentState, request: RolloutRequest) -> str:
    """Put the previous version back (or remove a first deployment); says what it did."""
    if state.previous is None:
        run_logger().warning("no previous version of %s to go back to: removing it",
                             state.name)
        remove_deployment(request.declaration, request.credentials, request.state_url)
        return "removed the deployment (there was no previous version)"
    restored = rollback_deployment(request.declaration, request.credentials, request.state_url)
    return f"rolled back to model {restored.model_hash[:12]}"


def publish_deployment(state: DeploymentState, model: str, stage: str | None) -> None:
    """A markdown artifact: what runs where."""
    create_markdown_artifact(
        key=artifact_key(state.name, "deployment"),
        markdown=(f"# Deployment `{state.name}`\n\n| | |\n|---|---|\n"
                  f"| Model | `{model}` |\n| Model hash | `{state.model_hash[:16]}` |\n"
                  f"| Target | {state.type} |\n| URL | {state.url} |\n"
                  f"| Stage | {stage or '-'} |\n| Deployed at | {state.deployed_at} |\n"),
        description=f"{state.name} runs {model}")


@flow(name="rollout-model", log_prints=True)
def rollout_model(request: RolloutRequest) -> RolloutResult:
    """Package (optional), deploy, smoke-test, roll back on failure, promote on success.

    Args:
        request: the model (a path, ``rf@v1.2.0``, ``rf@latest`` or ``rf#prod``), the
            deployment declaration and its credentials, the smoke test's rows, and the
            stage to promote the version to once it answers.

    Raises:
        SmokeTestError: the new version did not answer the sample rows; the message gives
            the reason and what the rollback did.
        RolledBackError: the new version failed the library's own checks and the
            previous one runs again.
        RegistryError: ``stage`` was asked for a model that is not a registry reference.
    """
    from mlem_lib.errors import RegistryError, SmokeTestError

    version = resolve_version(request.model, repo=request.repo)  # rf#prod -> rf@v1.2.0
    if request.stage and version is None:
        raise RegistryError(f"field 'stage': {request.model} is a path, not a registry "
                            "reference (name@version or name#stage), so it has no version "
                            "to promote")
    model = version.tag if version else request.model
    if request.package is not None:
        package_model(request.package.model_copy(update={"model": model,
                                                          "repo": request.repo}))
    state = deploy_model(request.declaration, model, request.credentials,
                         repo=os.path.abspath(request.repo) if version else None,
                         state_url=request.state_url)
    try:
        answer = smoke_test(state.url or "", request.sample, method=request.method,
                            model_hash=state.model_hash, timeout=request.smoke_timeout)
    except SmokeTestError as exc:
        undone = undo_rollout(state, request)
        raise SmokeTestError(f"smoke test of {model} at {state.url} failed: {exc}; {undone}"
                             ) from exc
    if request.stage and version:
        assign_stage(version.name, request.stage, version=version.version, repo=request.repo)
    publish_deployment(state, model, request.stage)
    run_logger().info("%s runs %s at %s", state.name, model, state.url)
    return RolloutResult(model=model, version=version.version if version else None,
                         deployment=state.name, url=state.url, model_hash=state.model_hash,
                         stage=request.stage, answer=answer)
