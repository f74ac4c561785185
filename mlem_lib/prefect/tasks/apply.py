"""Prefect tasks for batch prediction: ``apply_batch`` and the helpers of the batch flow.

``apply_batch`` predicts a whole file, or one partition of it, into an output file
(streamed, see :mod:`mlem_lib.batch`) and records a table artifact with rows and
rows/s. Only transient failures (the network, an object store) are retried; a
schema error fails the same way every time.

Example:
    >>> from prefect import flow
    >>> @flow
    ... def nightly():
    ...     apply_batch("models/rf", "s3://bucket/today.parquet",
    ...                 output="s3://bucket/preds.parquet")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.retry import retry_if_transient

if TYPE_CHECKING:
    from mlem_lib.batch import ApplySummary
    from mlem_lib.formats import Partition


def _summary_table(summary: ApplySummary) -> list[dict[str, Any]]:
    return [{"data": summary.data, "output": summary.output, "method": summary.method,
             "rows": summary.rows, "batches": summary.batches,
             "seconds": round(summary.seconds, 3),
             "rows/s": round(summary.rows_per_second)}]


@task(name="apply_batch", retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=retry_if_transient, cache_policy=NO_CACHE,
      task_run_name="apply-batch-{method}")
def apply_batch(model: str, data: str, output: str | None = None, method: str = "predict",
                batch_size: int | None = None, partition: Partition | None = None,
                repo: str | None = None) -> Any:
    """Apply a saved model to a data file (or one partition of it), streamed in chunks.

    Args:
        model: saved model path/URL or registry reference (``rf#prod``).
        data: input file path/URL (CSV, Parquet, JSON Lines, .npy, data ``.mlem``).
        output: where predictions go; required with ``partition``. ``None`` returns
            the predictions (keep that for small inputs).
        method: the model method.
        batch_size: rows per chunk.
        partition: only this part of the input (from :func:`plan_batch_partitions`).
        repo: git repository for registry references.

    Returns:
        An :class:`~mlem_lib.batch.ApplySummary` when writing to ``output``, else the
        predictions.

    Example:
        >>> apply_batch.fn("models/rf", "data/test.csv", output="preds.csv")  # doctest: +SKIP
    """
    from mlem_lib.batch import ApplySummary, apply_file, apply_partition
    from mlem_lib.errors import ApplyError
    from mlem_lib.runner import LoadedModel

    logger = run_logger()
    loaded = LoadedModel.load(model, repo=repo)
    if partition is None:
        result = apply_file(loaded, data, method=method, output=output, batch_size=batch_size,
                            quiet=True)
    else:
        if output is None:
            raise ApplyError("apply_batch needs an output when given a partition")
        result = apply_partition(loaded, data, partition, method, output, batch_size)
    if isinstance(result, ApplySummary):
        logger.info("%s: %s rows in %.2f s (%.0f rows/s) -> %s", result.data, result.rows,
                    result.seconds, result.rows_per_second, result.output)
        _artifact(result)
    else:
        logger.info("%s: predictions returned in memory", data)
    return result


def _artifact(summary: ApplySummary) -> None:
    from prefect.artifacts import create_table_artifact
    from prefect.context import TaskRunContext

    if TaskRunContext.get() is None:  # called through .fn outside a run
        return
    create_table_artifact(table=_summary_table(summary),
                          description=f"Batch predictions of {summary.data}")


@task(name="plan_batch_partitions", cache_policy=NO_CACHE)
def plan_batch_partitions(model: str, data: str, method: str = "predict",
                          partitions: int = 4, repo: str | None = None) -> list[Partition]:
    """Check the input's schema on its first rows, then split it into ordered partitions.

    Raises:
        SchemaError: the input does not match the method (before any prediction).

    Example:
        >>> plan_batch_partitions.fn("models/rf", "big.parquet", partitions=8)  # doctest: +SKIP
    """
    from mlem_lib.batch import check_input, plan_partitions
    from mlem_lib.runner import LoadedModel

    check_input(LoadedModel.load(model, repo=repo), data, method)
    parts = plan_partitions(data, partitions)
    run_logger().info("%s: %d partitions (%s)", data, len(parts), parts[0].unit)
    return parts


@task(name="merge_batch_outputs", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5,
      retry_condition_fn=retry_if_transient)
def merge_batch_outputs(parts: list[str], output: str | None,
                        batch_size: int | None = None) -> Any:
    """Concatenate partition outputs in order into ``output`` (atomically), or return them.

    Example:
        >>> merge_batch_outputs.fn(["p0.parquet", "p1.parquet"], "preds.csv")  # doctest: +SKIP
    """
    from mlem_lib.batch import ApplySummary, merge_outputs

    result = merge_outputs(parts, output, batch_size=batch_size)
    if isinstance(result, ApplySummary):
        run_logger().info("merged %d partitions, %s rows -> %s", len(parts), result.rows,
                          output)
    return result
