"""``register_model``: the last step of a training flow.

Save the trained object with inferred metadata inside the registry repository,
register it as a version (binary pushed with DVC, GTO tag in git), optionally
give it a stage, and publish a model card (markdown) and a version row (table)
as Prefect artifacts. Rerunning with the same model returns the version that
already holds it instead of failing.

Example:
    >>> from mlem_lib.prefect.flows.params import RegisterOptions
    >>> register_model(model, RegisterOptions(name="iris", repo="ws"), sample_data=X,
    ...                metrics={"accuracy": 0.97}).tag  # doctest: +SKIP
    'iris@v0.0.1'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from mlem_lib.prefect.flows.model_card import card_row, render_card
from mlem_lib.prefect.flows.names import artifact_key, model_name
from mlem_lib.prefect.flows.params import Bump, RegisterOptions, RegisterSavedRequest
from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.tasks.models import save_model
from mlem_lib.prefect.tasks.registry import assign_stage, register_version
from mlem_lib.registry.models import RegisteredVersion  # at run time: Prefect reads the hints

if TYPE_CHECKING:
    from mlem_lib.meta import ModelMeta


def registered_with_hash(name: str, model_hash: str, repo: str) -> RegisteredVersion | None:
    """The latest version of ``name`` when it holds exactly this model content, else ``None``.

    Example:
        >>> registered_with_hash("iris", meta.model_hash, "ws").path  # doctest: +SKIP
        'models/iris'
    """
    from mlem_lib import locate
    from mlem_lib.errors import RegistryError

    try:
        latest = locate.resolve_version(locate.Reference(name, "latest"), repo)
    except RegistryError:  # no such model yet, or no version registered
        return None
    same = locate.read_model_meta(latest.tag, repo).model_hash == model_hash
    return latest if same else None


def publish_card(meta: ModelMeta, registered: RegisteredVersion,
                 metrics: dict[str, float] | None, repo: str = ".") -> None:
    """Create the model card (markdown, with the plots registered with the version as
    images) and version row (table) artifacts."""
    from mlem_lib.registry.metrics import version_records

    plots = version_records(registered.tag, repo).plots
    create_markdown_artifact(
        key=artifact_key(registered.name, "model-card"),
        markdown=render_card(meta, registered.name, registered.version, metrics=metrics,
                             tag=registered.tag, commit=registered.commit,
                             path=registered.path,
                             plots={p: os.path.join(repo, p) for p in plots}),
        description=f"Model card of {registered.tag}")
    create_table_artifact(
        key=artifact_key(registered.name, "versions"),
        table=[card_row(meta, registered.name, registered.version, metrics=metrics,
                        tag=registered.tag, commit=registered.commit)],
        description=f"Registered version {registered.tag}")


def _register(meta: ModelMeta, model_path: str, name: str, repo: str, *,
              version: str | None, bump: Bump, push: bool, stage: str | None,
              metrics: dict[str, float] | None, message: str | None = None,
              plots: str | None = None) -> RegisteredVersion:
    logger = run_logger()
    existing = registered_with_hash(name, meta.model_hash, repo)
    if existing is not None and version in (None, existing.version):
        logger.info("this model is already registered as %s: reusing it", existing.tag)
        registered = existing
    else:
        registered = register_version(model_path, name=name, version=version,
                                      bump=bump, repo=repo, push=push, message=message,
                                      metrics=metrics, plots=plots)
    if stage:
        assign_stage(name, stage, version=registered.version, repo=repo)
    publish_card(meta, registered, metrics, repo)
    return registered


@flow(name="register-model", log_prints=True)
def register_model(model: Any, options: RegisterOptions, sample_data: Any = None,
                   metrics: dict[str, float] | None = None,
                   plots: str | None = None) -> RegisteredVersion:
    """Save, register and document a trained model (call it at the end of training).

    Args:
        model: the trained object.
        options: name, registry repository, version/bump, stage... (:class:`RegisterOptions`).
        sample_data: a few input rows: they give the model card its schemas.
        metrics: evaluation results, committed with the version and shown on the card.
        plots: a folder (or file) of plots committed with the version; PNG/JPEG/SVG
            ones appear on the model card as images.

    Returns:
        The registered version (``name``, ``version``, ``tag``, ``commit``).
    """
    rel_path = os.path.join(options.models_dir, options.name)
    meta = save_model(model, os.path.join(options.repo, rel_path), sample_data,
                      description=options.description, labels=options.labels)
    return _register(meta, rel_path, options.name, options.repo, version=options.version,
                     bump=options.bump, push=options.push, stage=options.stage,
                     metrics=metrics, plots=plots)


@flow(name="register-saved-model", log_prints=True)
def register_saved_model(request: RegisterSavedRequest) -> RegisteredVersion:
    """Register a model already saved in the repository (the deployable variant).

    ``register_model`` needs the trained object, which a deployment cannot take as a
    parameter; this flow takes the saved model's path instead.

    Args:
        request: the saved model's path in the registry repository, the version (or the
            part to bump), the metrics for the model card and an optional stage.
    """
    from mlem_lib.locate import read_model_meta

    meta = read_model_meta(os.path.join(request.repo, request.model_path))
    return _register(meta, request.model_path, model_name(request.model_path), request.repo,
                     version=request.version, bump=request.bump, push=request.push,
                     stage=request.stage, metrics=request.metrics,
                     plots=os.path.join(request.repo, request.plots) if request.plots else None)
