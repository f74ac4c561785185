"""``assign_model``: promote a registered version to a stage, from the UI or a schedule.

Assigning emits ``mlem.model.stage-assigned`` (:mod:`mlem_lib.events`); the ``rollout``
deployment of ``prefect.yaml`` has a trigger on it for ``prod``, so running this flow's
``assign`` deployment with ``stage: prod`` rolls that version out.

Example:
    >>> from mlem_lib.prefect.flows.params import AssignRequest
    >>> assign_model(AssignRequest(name="iris", version="v0.0.2",
    ...                            repo="ws")).tag  # doctest: +SKIP
    'iris#prod#2'
"""

from __future__ import annotations

from prefect import flow

from mlem_lib.prefect.flows.params import AssignRequest
from mlem_lib.prefect.tasks.registry import assign_stage
from mlem_lib.registry.models import StageAssignment  # Prefect reads the hints at run time


@flow(name="assign-model", log_prints=True)
def assign_model(request: AssignRequest) -> StageAssignment:
    """Put ``request.version`` (default: the latest) of ``request.name`` in ``request.stage``.

    Args:
        request: the model's name, the stage, the version and the registry.
    """
    return assign_stage(request.name, request.stage, version=request.version,
                        repo=request.repo)
