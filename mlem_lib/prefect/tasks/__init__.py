"""Prefect tasks over mlem_lib, one verb each (verb_noun names, as prefect-aws names them).

Example:
    >>> from mlem_lib.prefect.tasks import deploy_model, save_model
    >>> save_model.name, deploy_model.name
    ('save_model', 'deploy_model')
"""

# ruff: noqa: E402  (the extra is checked before the Prefect imports below)
from mlem_lib.extras import need

need("prefect", "mlem_lib's Prefect tasks")

from mlem_lib.prefect.tasks.apply import apply_batch, merge_batch_outputs, plan_batch_partitions
from mlem_lib.prefect.tasks.build import (
    build_docker_image,
    build_model,
    build_pip_package,
    push_image,
)
from mlem_lib.prefect.tasks.deploy import (
    deploy_model,
    deployment_status,
    remove_deployment,
    smoke_test,
)
from mlem_lib.prefect.tasks.models import infer_metadata, save_model
from mlem_lib.prefect.tasks.registry import assign_stage, find_stage_version, register_version
from mlem_lib.prefect.tasks.workspace import ensure_workspace

__all__ = [
    "apply_batch", "assign_stage", "build_docker_image", "build_model", "build_pip_package",
    "deploy_model",
    "deployment_status", "ensure_workspace", "find_stage_version", "infer_metadata",
    "merge_batch_outputs", "plan_batch_partitions", "push_image", "register_version",
    "remove_deployment", "save_model", "smoke_test",
]
