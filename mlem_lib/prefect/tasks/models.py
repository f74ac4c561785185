"""Tasks that save a trained model and describe it.

Example:
    >>> from prefect import flow
    >>> @flow
    ... def train():
    ...     model = ...  # fit something
    ...     meta = save_model(model, "models/rf", sample_data=X)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from mlem_lib.prefect.logs import run_logger

if TYPE_CHECKING:
    from mlem_lib.meta import ModelMeta


def describe_meta(meta: ModelMeta) -> str:
    """One line: framework, methods and how many requirements.

    Example:
        >>> from mlem_lib.meta import ModelMeta, ModelType, Signature
        >>> mt = ModelType(type="sklearn", methods={"predict": Signature(name="predict")})
        >>> describe_meta(ModelMeta(model_type=mt))
        'sklearn model, methods: predict, 0 requirements'
    """
    methods = ", ".join(meta.model_type.methods) or "none"
    return (f"{meta.model_type.type} model, methods: {methods}, "
            f"{len(meta.requirements)} requirements")


# Model objects can be large and are not always hashable: no input-based caching.
@task(cache_policy=NO_CACHE, task_run_name="save-model-{path}")
def save_model(model: Any, path: str, sample_data: Any = None, description: str | None = None,
               labels: list[str] | None = None) -> ModelMeta:
    """Save a trained model with metadata inferred from it and a data sample.

    Args:
        model: the trained object (scikit-learn, xgboost, lightgbm, a function...).
        path: where to write it (local path or fsspec URL, without ``.mlem``).
        sample_data: example input; gives the argument and return schemas.
        description: free text written into the metadata.
        labels: tags written into the metadata.

    Returns:
        The metadata written to ``<path>.mlem``.

    Example:
        >>> save_model.fn(lambda xs: [x * 2 for x in xs], "memory://t/double",
        ...               sample_data=[1, 2]).model_type.type  # doctest: +SKIP
        'callable'
    """
    import mlem_lib.api as mlem
    from mlem_lib.errors import UnsupportedObjectError
    from mlem_lib.meta import ModelMeta

    logger = run_logger()
    meta = mlem.save(model, path, sample_data, description=description, labels=labels)
    if not isinstance(meta, ModelMeta):
        raise UnsupportedObjectError(
            f"save_model got a {type(model).__name__}, which was saved as data, not a model")
    logger.info("saved %s to %s (hash %s)", describe_meta(meta), path, meta.model_hash[:12])
    return meta


@task(cache_policy=NO_CACHE)
def infer_metadata(model: Any, sample_data: Any = None) -> ModelMeta:
    """The metadata ``save_model`` would write, without writing anything.

    Example:
        >>> infer_metadata.fn(lambda xs: xs, [1]).model_type.type
        'callable'
    """
    from mlem_lib.runner import LoadedModel

    meta = LoadedModel.from_object(model, sample_data).meta
    run_logger().info("inferred %s", describe_meta(meta))
    return meta
