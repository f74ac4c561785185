"""``redeploy_stage``: keep a deployment on the version that holds a stage.

Meant for a schedule: it finds the version at the stage (e.g. ``prod``), asks
the deployment which model hash it runs, and rolls out only when they differ
(or the deployment is down). An unchanged stage costs two look-ups.

Example:
    >>> from mlem_lib.prefect.flows.params import RedeployRequest
    >>> redeploy_stage(RedeployRequest(name="iris", repo="ws")).action  # doctest: +SKIP
    'unchanged'
"""

from __future__ import annotations

from typing import Literal

from prefect import flow
from pydantic import BaseModel

from mlem_lib.prefect.flows.params import RedeployRequest, RolloutRequest
from mlem_lib.prefect.flows.rollout_model import RolloutResult, rollout_model
from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.tasks.deploy import deployment_status
from mlem_lib.prefect.tasks.registry import find_stage_version


class RedeployResult(BaseModel):
    """What ``redeploy_stage`` did: ``unchanged``, ``rolled-out`` or ``empty-stage``."""

    action: Literal["unchanged", "rolled-out", "empty-stage"]
    version: str | None = None
    model_hash: str | None = None
    rollout: RolloutResult | None = None


@flow(name="redeploy-stage", log_prints=True)
def redeploy_stage(request: RedeployRequest) -> RedeployResult:
    """Roll the stage's version out if the deployment runs something else.

    Args:
        request: the model name and the stage to follow, the deployment declaration and
            its credentials, and the smoke test's rows.
    """
    from mlem_lib.locate import read_model_meta

    logger = run_logger()
    version = find_stage_version(request.name, request.stage, repo=request.repo)
    if version is None:
        logger.warning("no version of %s is at stage %s: nothing to deploy", request.name,
                       request.stage)
        return RedeployResult(action="empty-stage")
    ref = f"{request.name}@{version}"
    wanted = read_model_meta(ref, request.repo).model_hash
    status = deployment_status(request.declaration, request.credentials, request.state_url)
    if status.deployed and status.healthy and status.model_hash == wanted:
        logger.info("%s already runs %s (%s): nothing to do", status.name, ref, wanted[:12])
        return RedeployResult(action="unchanged", version=version, model_hash=wanted)
    why = ("not deployed" if not status.deployed else "not healthy" if not status.healthy
           else f"runs {(status.model_hash or '?')[:12]}")
    logger.info("%s is %s; rolling out %s (%s)", status.name, why, ref, wanted[:12])
    result = rollout_model(RolloutRequest(
        model=ref, repo=request.repo, declaration=request.declaration, sample=request.sample,
        method=request.method, credentials=request.credentials, state_url=request.state_url,
        smoke_timeout=request.smoke_timeout))
    return RedeployResult(action="rolled-out", version=version, model_hash=result.model_hash,
                          rollout=result)
