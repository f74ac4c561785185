"""Prefect flows that take a trained model to production.

``register_model`` (call it at the end of training: save, register, model card),
``register_saved_model`` (its deployable variant), ``package_model`` (pip / docker),
``rollout_model`` (deploy, smoke test, roll back, promote), ``assign_model`` (promote a
version; assigning ``prod`` triggers the rollout deployment), ``redeploy_stage``
(scheduled: follow a stage) and ``batch_apply`` (partitioned batch predictions).
``prefect.yaml`` deploys them by module path, e.g.
``entrypoint: mlem_lib.prefect.flows.rollout_model:rollout_model``.

Example:
    >>> from mlem_lib.prefect.flows import RolloutRequest
    >>> RolloutRequest(model="iris#prod").declaration
    'deployments/local.yaml'
"""

# ruff: noqa: E402  (the extra is checked before the Prefect imports below)
from mlem_lib.extras import need

need("prefect", "mlem_lib's Prefect flows")

from mlem_lib.prefect.flows.assign_model import assign_model
from mlem_lib.prefect.flows.batch_apply import batch_apply
from mlem_lib.prefect.flows.package_model import PackageResult, package_model
from mlem_lib.prefect.flows.params import (
    AssignRequest,
    PackageRequest,
    RedeployRequest,
    RegisterOptions,
    RegisterSavedRequest,
    RolloutRequest,
)
from mlem_lib.prefect.flows.redeploy_stage import RedeployResult, redeploy_stage
from mlem_lib.prefect.flows.register_model import register_model, register_saved_model
from mlem_lib.prefect.flows.rollout_model import RolloutResult, rollout_model

__all__ = [
    "AssignRequest", "PackageRequest", "PackageResult", "RedeployRequest", "RedeployResult",
    "RegisterOptions", "RegisterSavedRequest", "RolloutRequest", "RolloutResult",
    "assign_model", "batch_apply", "package_model", "redeploy_stage", "register_model",
    "register_saved_model", "rollout_model",
]
