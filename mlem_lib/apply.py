"""Applying a model to data: in memory, or streamed over files (see :mod:`mlem_lib.batch`)."""

from __future__ import annotations

from typing import Any


def _is_location(data: Any) -> bool:
    import os

    return isinstance(data, str | os.PathLike)


def apply(model: Any, data: Any, method: str = "predict", output: str | None = None,
          batch_size: int | None = None, quiet: bool = True, repo: str | None = None) -> Any:
    """See :func:`mlem_lib.api.apply`."""
    from mlem_lib.runner import LoadedModel

    if isinstance(model, LoadedModel):
        loaded = model
    elif isinstance(model, str):
        loaded = LoadedModel.load(model, repo=repo)
    else:
        loaded = LoadedModel.from_object(model)
    if _is_location(data):
        from mlem_lib.batch import apply_file

        return apply_file(loaded, str(data), method=method, output=output,
                          batch_size=batch_size, quiet=quiet)
    return loaded.call(method, data)
