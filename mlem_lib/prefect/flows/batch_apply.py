"""``batch_apply``: batch predictions over a big file, one Prefect task per partition.

The input is checked against the model's schema on its first rows, split into
ordered partitions (byte ranges for CSV/JSON Lines, row groups for Parquet, row
ranges for ``.npy``), each partition is predicted by an ``apply_batch`` task into
its own part file, and the parts are concatenated in order into the output
(atomically). Part files live in a staging folder next to the output (so workers
on other machines can reach them when the output is on S3) and are removed
afterwards.

With Prefect's default task runner the partitions run in local threads; to spread
them over a Dask cluster, point ``prefect-dask``'s runner at it:

Example:
    >>> batch_apply("models/rf", "data/big.parquet", "preds.parquet")  # doctest: +SKIP
    >>> on_dask("tcp://10.0.0.5:8786")("models/rf", "s3://b/big.csv",
    ...                                 "s3://b/preds.csv", partitions=32)  # doctest: +SKIP
"""

from __future__ import annotations

import posixpath
import tempfile
import uuid
from typing import Annotated, Any

from prefect import Flow, flow
from pydantic import Field

from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.tasks.apply import apply_batch, merge_batch_outputs, plan_batch_partitions


def _staging(output: str | None) -> tuple[Any, str]:
    """A fresh folder for part files: beside ``output``, else in the local temp dir."""
    from mlem_lib.storage import get_fs

    if output is None:
        return get_fs(tempfile.mkdtemp(prefix="mlem-batch-parts-"))
    fs, path = get_fs(output)
    head, tail = posixpath.split(path)
    folder = posixpath.join(head, f".{tail}.parts-{uuid.uuid4().hex[:12]}")
    fs.makedirs(folder, exist_ok=True)
    return fs, folder


def _part_url(fs: Any, folder: str, index: int, output: str | None) -> str:
    from mlem_lib.formats import output_format

    ext = "npy" if output is not None and output_format(output) == "npy" else "parquet"
    name = posixpath.join(folder, f"part-{index:05d}.{ext}")
    return str(fs.unstrip_protocol(name))


@flow(name="batch-apply")
def batch_apply(model: str, data: str, output: str | None = None, method: str = "predict",
                partitions: Annotated[int, Field(ge=1, le=10_000)] = 4,
                batch_size: Annotated[int, Field(ge=1)] | None = None,
                repo: str | None = None) -> Any:
    """Predict ``data`` partition by partition and write the predictions to ``output``.

    Args:
        model: saved model path/URL or registry reference (``rf#prod``).
        data: input file path/URL (CSV, Parquet, JSON Lines, .npy or a data ``.mlem``).
        output: output file (``.csv``, ``.parquet``, ``.jsonl``, ``.npy``); ``None``
            returns the predictions (then workers must share the local disk).
        method: the model method.
        partitions: at most this many partitions (one task each).
        batch_size: rows per chunk inside each task.
        repo: git repository for registry references.

    Returns:
        An :class:`~mlem_lib.batch.ApplySummary` of the merged output, or the
        predictions when ``output`` is ``None``.
    """
    from mlem_lib.formats import output_format

    logger = run_logger()
    if output is not None:
        output_format(output)  # a bad extension fails before any work
    parts = plan_batch_partitions(model, data, method, partitions, repo)
    fs, folder = _staging(output)
    try:
        futures = [apply_batch.submit(model, data, output=_part_url(fs, folder, p.index, output),
                                      method=method, batch_size=batch_size, partition=p,
                                      repo=repo)
                   for p in parts]
        summaries = [f.result() for f in futures]
        rows = sum(s.rows for s in summaries)
        logger.info("%d partitions predicted, %d rows", len(summaries), rows)
        return merge_batch_outputs([s.output for s in summaries], output, batch_size)
    finally:
        if fs.exists(folder):
            fs.rm(folder, recursive=True)


def on_dask(address: str, **client_kwargs: Any) -> Flow[..., Any]:
    """``batch_apply`` running its partition tasks on the Dask cluster at ``address``.

    Example:
        >>> flow = on_dask("tcp://127.0.0.1:8786")
        >>> flow("models/rf", "big.parquet", "p.parquet")  # doctest: +SKIP
    """
    from mlem_lib.extras import require

    prefect_dask = require("prefect_dask", extra="dask",
                           feature="batch_apply on a Dask cluster")
    runner: Any = prefect_dask.DaskTaskRunner(address=address,
                                              client_kwargs=client_kwargs or None)
    return batch_apply.with_options(task_runner=runner)
