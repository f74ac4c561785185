"""Applying a model to data: in memory, or streamed over files (see :mod:`mlem_lib.batch`)."""

from __future__ import annotations

from typing import Any


def _is_location(data: Any) -> bool:
    import os

    return isinstance(data, str | os.PathLike)


def apply(model: Any, data: Any, method: str = "predict", output: str | None = None,
          batch_size: int | None = None, quiet: bool = True, repo: str | None = None,
          column: str | None = None, keep_columns: list[str] | None = None,
          with_input: bool = False) -> Any:
    """See :func:`mlem_lib.api.apply`."""
    from mlem_lib.batch import Layout
    from mlem_lib.runner import LoadedModel

    if isinstance(model, LoadedModel):
        loaded = model
    elif isinstance(model, str):
        loaded = LoadedModel.load(model, repo=repo)
    else:
        loaded = LoadedModel.from_object(model)
    layout = Layout(column=column, keep=list(keep_columns or []) or None,
                    with_input=with_input)
    if _is_location(data) or output is not None or column or layout.passes_input:
        from mlem_lib.batch import apply_file

        return apply_file(loaded, str(data) if _is_location(data) else data, method=method,
                          output=output, batch_size=batch_size, quiet=quiet, layout=layout)
    return loaded.call(method, data)
