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

from mlem_lib.prefect.flows.package_model import package_model, pin_reference
from mlem_lib.prefect.flows.params import RolloutRequest
from mlem_lib.prefect.flows.references import artifact_key, model_name, split_reference
from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.tasks.deploy import deploy_model, remove_deployment, smoke_test
from mlem_lib.prefect.tasks.registry import assign_stage

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


def smoke_sample(model: str, repo: str | None, method: str,
                 sample: list[Any] | None) -> Any:
    """The rows to send: the given sample, else an example built from the saved schema."""
    if sample is not None:
        return sample
    import mlem_lib.api as mlem
    from mlem_lib.deploy.smoke import smoke_request
    from mlem_lib.meta import ModelMeta

    meta = mlem.load_meta(model, repo=repo)
    if not isinstance(meta, ModelMeta):
        return None
    _, body = smoke_request(meta, method)
    return body.get("data")


def _rollback_source(state: DeploymentState) -> str | None:
    prev = state.previous
    if prev is None or prev.model_hash == state.model_hash:
        return None
    copy = prev.target.get("model_copy")
    if copy and os.path.exists(f"{copy}.mlem"):
        return str(copy)
    return prev.model_path


def roll_back(state: DeploymentState, declaration: str, repo: str | None,
              state_url: str | None, credentials: str | None) -> str:
    """Put the previous good model back (or remove a first deployment); says what it did."""
    logger = run_logger()
    source = _rollback_source(state)
    if source is None:
        logger.warning("no previous version of %s to go back to: removing it", state.name)
        remove_deployment(declaration, credentials, state_url)
        return "removed the deployment (there was no previous version)"
    logger.warning("rolling %s back to %s", state.name, source)
    restored = deploy_model(declaration, source, credentials, repo=repo, state_url=state_url)
    return f"rolled back to model {restored.model_hash[:12]} ({source})"


@flow(name="rollout-model", log_prints=True)
def rollout_model(request: RolloutRequest) -> RolloutResult:
    """Package (optional), deploy, smoke-test, roll back on failure, promote on success.

    Args:
        request: the model (a path, ``rf@v1.2.0``, ``rf@latest`` or ``rf#prod``), the
            deployment declaration and its credentials, the smoke test's rows, and the
            stage to promote the version to once it answers.

    Raises:
        SmokeTestError: the new version did not answer correctly; the message gives the
            reason and what the rollback did.
        RegistryError: ``stage`` was asked for a model that is not a registry reference.
    """
    from mlem_lib.errors import RegistryError, SmokeTestError

    logger = run_logger()
    model, version = pin_reference(request.model, request.repo)
    is_ref = split_reference(model) is not None
    if request.stage and not is_ref:
        raise RegistryError(f"field 'stage': {request.model} is a path, not a registry "
                            "reference (name@version or name#stage), so it has no version "
                            "to promote")
    repo = os.path.abspath(request.repo) if is_ref else None
    if request.package is not None:
        package_model(request.package.model_copy(update={"model": model,
                                                          "repo": request.repo}))
    state = deploy_model(request.declaration, model, request.credentials, repo=repo,
                         state_url=request.state_url)
    sample = smoke_sample(model, repo, request.method, request.sample)
    try:
        answer = smoke_test(state.url or "", sample, method=request.method,
                            timeout=request.smoke_timeout)
    except SmokeTestError as exc:
        done = roll_back(state, request.declaration, repo, request.state_url,
                         request.credentials)
        raise SmokeTestError(f"smoke test of {model} at {state.url} failed: {exc}; {done}"
                             ) from exc
    if request.stage and version:
        assign_stage(model_name(model), request.stage, version=version, repo=request.repo)
    create_markdown_artifact(
        key=artifact_key(state.name, "deployment"),
        markdown=(f"# Deployment `{state.name}`\n\n| | |\n|---|---|\n"
                  f"| Model | `{model}` |\n| Model hash | `{state.model_hash[:16]}` |\n"
                  f"| Target | {state.type} |\n| URL | {state.url} |\n"
                  f"| Stage | {request.stage or '-'} |\n| Deployed at | {state.deployed_at} |\n"),
        description=f"{state.name} runs {model}")
    logger.info("%s runs %s at %s", state.name, model, state.url)
    return RolloutResult(model=model, version=version, deployment=state.name, url=state.url,
                         model_hash=state.model_hash, stage=request.stage, answer=answer)
