"""Batch prediction over files of any size: read, predict and write in chunks.

Peak memory depends on the batch size, not on the file size; output rows keep the
input's order; the input is checked against the method's saved schema before any
prediction is made; the output appears atomically (a failed run leaves none).
Readers live in :mod:`mlem_lib.formats`, writers in :mod:`mlem_lib.sinks`.

Example:
    >>> from mlem_lib.runner import LoadedModel  # doctest: +SKIP
    >>> apply_file(LoadedModel.load("models/rf"), "s3://bucket/big.csv",
    ...            output="s3://bucket/preds.parquet")  # doctest: +SKIP
    ApplySummary(data='s3://bucket/big.csv', output='s3://bucket/preds.parquet', ...)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, computed_field

from mlem_lib.errors import ApplyError, SchemaError

if TYPE_CHECKING:
    from mlem_lib.formats import Partition, Source
    from mlem_lib.runner import LoadedModel
    from mlem_lib.sinks import Sink

#: Rows per chunk for local prediction: large enough that per-chunk overhead is noise
#: next to the model call, small enough (a few MB for tabular data) to bound memory.
DEFAULT_BATCH_SIZE = 250_000
#: Rows per HTTP request for :func:`apply_remote` (JSON bodies of a few MB at most).
DEFAULT_REMOTE_BATCH_SIZE = 5_000


class ApplySummary(BaseModel):
    """What a batch run did (returned when predictions go to an output file)."""

    data: str
    output: str | None
    method: str
    rows: int
    batches: int
    seconds: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def _batch_size(batch_size: int | None, default: int) -> int:
    if batch_size is None:
        return default
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ApplyError(f"batch size must be a positive number of rows, got {batch_size!r}")
    return batch_size


def _label(data: Any) -> str:
    import os

    return os.fspath(data) if isinstance(data, str | os.PathLike) else type(data).__name__


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int | None, quiet: bool, desc: str) -> Any:
    """A tqdm bar on stderr when it is a terminal and ``quiet`` is off."""
    if quiet or not sys.stderr.isatty():
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="rows", unit_scale=True, desc=desc, file=sys.stderr,
                dynamic_ncols=True)


def _rows(obj: Any) -> int | None:
    shape = getattr(obj, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    if isinstance(obj, list | tuple):
        return len(obj)
    return None


def adapt_chunk(chunk: Any, arg_type: Any) -> Any:
    """Reshape a raw chunk toward the method's argument type before validation.

    A 2-D array meets a DataFrame schema by position (when the widths agree); JSON
    Lines objects meet a non-table schema as a DataFrame. Everything else is left to
    the schema's own validation, which names the offending column.
    """
    kind = getattr(arg_type, "type", None)
    if kind == "dataframe" and getattr(chunk, "ndim", None) == 2 and not hasattr(chunk, "iloc"):
        import pandas as pd

        columns = list(arg_type.columns)
        if chunk.shape[1] != len(columns):
            raise SchemaError(
                f"expected {len(columns)} columns ({', '.join(columns)}), got an array with "
                f"{chunk.shape[1]}", field=None, expected=f"{len(columns)} columns",
                got=f"{chunk.shape[1]} columns")
        return pd.DataFrame(chunk, columns=columns)
    if (kind != "dataframe" and isinstance(chunk, list) and chunk
            and isinstance(chunk[0], dict)):
        import pandas as pd

        return pd.DataFrame.from_records(chunk)
    return chunk


def _local_predictor(loaded: LoadedModel, method: str) -> Callable[[Any], Any]:
    sig = loaded.signature(method)  # an unknown method fails here, before any reading
    arg_type = sig.args[0].type_ if sig.args else None

    def predict(chunk: Any) -> Any:
        data = adapt_chunk(chunk, arg_type)
        data = loaded.validate(method, data)
        return loaded.call(method, data, validate=False)

    return predict


def _prefetch(chunks: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Read the next chunk in a background thread while the current one is predicted.

    Decoding (Parquet, CSV) releases the GIL, so reading overlaps the model call; at most
    ``depth + 2`` chunks are in memory at once. Errors from the reader are re-raised here.
    """
    import queue
    import threading

    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not put(("chunk", chunk)):
                    return
            put(("end", None))
        except BaseException as exc:
            put(("error", exc))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=read, name="mlem-apply-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


@contextmanager
def _all_or_nothing(sink: Sink, bar: Any) -> Iterator[None]:
    """Abort the sink (no output file appears) on any failure; always close the bar."""
    try:
        yield
    except BaseException:
        sink.abort()
        raise
    finally:
        bar.close()


def _stream(source: Source, predict: Callable[[Any], Any], sink: Sink, batch_size: int,
            quiet: bool, part: Partition | None = None) -> tuple[Any, int, int, float]:
    """Push every chunk through ``predict`` into ``sink``; abort the sink on any failure."""
    start = time.perf_counter()
    rows = batches = 0
    total = source.num_rows() if part is None else None
    bar = _progress(total, quiet, desc="apply")
    with _all_or_nothing(sink, bar):
        for chunk in _prefetch(source.chunks(batch_size, part)):
            n_in = _rows(chunk)
            if n_in == 0:  # header-only files, empty row groups: nothing to predict
                continue
            result = predict(chunk)
            n_out = _rows(result)
            if n_in is not None and n_out is not None and n_in != n_out:
                raise ApplyError(f"the method returned {n_out} rows for a batch of {n_in}: "
                                 "batch prediction needs one output row per input row")
            sink.write(result)
            n = n_in if n_in is not None else 1
            rows += n
            batches += 1
            bar.update(n)
        value = sink.close()
    return value, rows, batches, time.perf_counter() - start


def _run(source: Source, predict: Callable[[Any], Any], data: Any, method: str,
         output: str | None, batch_size: int, quiet: bool) -> Any:
    from mlem_lib.sinks import open_sink

    sink = open_sink(output)
    value, rows, batches, seconds = _stream(source, predict, sink, batch_size, quiet)
    if output is None:
        return value
    return ApplySummary(data=_label(data), output=output, method=method, rows=rows,
                        batches=batches, seconds=seconds)


def apply_file(loaded: LoadedModel, data: str, method: str = "predict",
               output: str | None = None, batch_size: int | None = None,
               quiet: bool = True) -> Any:
    """Apply a model method to a file, streaming it in chunks.

    Args:
        loaded: the model.
        data: path or fsspec URL of a CSV, Parquet, JSON Lines or ``.npy`` file, or of
            a MLEM data object (``*.mlem`` with ``object_type: data``).
        method: the method to call.
        output: where predictions go (format from the extension: ``.csv``,
            ``.parquet``, ``.jsonl``, ``.npy``); ``None`` returns them in memory.
        batch_size: rows per chunk (default :data:`DEFAULT_BATCH_SIZE`).
        quiet: no progress bar (there is none anyway when stderr is not a terminal).

    Returns:
        An :class:`ApplySummary` when ``output`` is given, else all predictions
        (an array, DataFrame or list, like a direct call would return).

    Raises:
        SchemaError: the input does not match the method's schema (raised on the first
            chunk, before any prediction).
        ApplyError: unsupported format, bad batch size, or a model that does not
            return one row per input row.
        ObjectNotFoundError: the input does not exist.

    Example:
        >>> apply_file(loaded, "data/test.csv", output="preds.parquet")  # doctest: +SKIP
    """
    from mlem_lib.formats import open_source, output_format

    size = _batch_size(batch_size, DEFAULT_BATCH_SIZE)
    predict = _local_predictor(loaded, method)
    if output is not None:
        output_format(output)  # a bad output extension fails before any reading
    source = open_source(data)
    return _run(source, predict, data, method, output, size, quiet)


def check_input(loaded: LoadedModel, data: Any, method: str = "predict",
                batch_size: int = 1000) -> None:
    """Validate the first chunk of ``data`` against the method's schema without predicting.

    Raises:
        SchemaError: naming the missing or mistyped column.

    Example:
        >>> check_input(loaded, "data/test.parquet", "predict_proba")  # doctest: +SKIP
    """
    from mlem_lib.formats import open_source

    sig = loaded.signature(method)
    arg_type = sig.args[0].type_ if sig.args else None
    for chunk in open_source(data).chunks(batch_size):
        loaded.validate(method, adapt_chunk(chunk, arg_type))
        break


def apply_partition(loaded: LoadedModel, data: str, partition: Partition, method: str,
                    output: str, batch_size: int | None = None) -> ApplySummary:
    """Predict one partition of an input file into its own output file.

    Example:
        >>> part = plan_partitions("data/big.parquet", 4)[0]  # doctest: +SKIP
        >>> apply_partition(loaded, "data/big.parquet", part, "predict",
        ...                 "p0.parquet")  # doctest: +SKIP
    """
    from mlem_lib.formats import open_source
    from mlem_lib.sinks import open_sink

    size = _batch_size(batch_size, DEFAULT_BATCH_SIZE)
    predict = _local_predictor(loaded, method)
    sink = open_sink(output)
    _, rows, batches, seconds = _stream(open_source(data), predict, sink, size, quiet=True,
                                        part=partition)
    return ApplySummary(data=f"{data}[{partition.unit} {partition.start}:{partition.stop}]",
                        output=output, method=method, rows=rows, batches=batches,
                        seconds=seconds)


def plan_partitions(data: str, partitions: int) -> list[Partition]:
    """Split an input file into at most ``partitions`` contiguous parts, in order.

    Example:
        >>> [p.unit for p in plan_partitions("data/big.csv", 2)]  # doctest: +SKIP
        ['bytes', 'bytes']
    """
    from mlem_lib.formats import open_source

    if partitions < 1:
        raise ApplyError(f"the number of partitions must be at least 1, got {partitions}")
    return open_source(data).partitions(partitions)


def merge_outputs(parts: list[str], output: str | None, batch_size: int | None = None,
                  quiet: bool = True) -> Any:
    """Concatenate partition outputs, in the given order, into ``output`` (atomically).

    With ``output=None`` the predictions are returned in memory.

    Example:
        >>> merge_outputs(["p0.parquet", "p1.parquet"], "preds.csv")  # doctest: +SKIP
    """
    from mlem_lib.formats import open_source
    from mlem_lib.sinks import open_sink

    size = _batch_size(batch_size, DEFAULT_BATCH_SIZE)
    sink = open_sink(output)

    def pieces() -> Iterator[Any]:
        for part in parts:
            yield from open_source(part).chunks(size)

    start = time.perf_counter()
    rows = 0
    bar = _progress(None, quiet, desc="merge")
    with _all_or_nothing(sink, bar):
        for piece in pieces():
            if output is None:
                piece = _unframe(piece)
            sink.write(piece)
            rows += _rows(piece) or 0
            bar.update(_rows(piece) or 0)
        value = sink.close()
    if output is None:
        return value
    return ApplySummary(data=f"{len(parts)} partitions", output=output, method="merge",
                        rows=rows, batches=len(parts), seconds=time.perf_counter() - start)


def _unframe(piece: Any) -> Any:
    """A single ``prediction`` column read back from a part file becomes an array again."""
    if hasattr(piece, "columns"):
        cols = list(piece.columns)
        if cols == ["prediction"]:
            return piece["prediction"].to_numpy()
        if cols and all(c == f"prediction_{i}" for i, c in enumerate(cols)):
            return piece.to_numpy()
    return piece


def apply_remote(url: str, data: Any, method: str = "predict", output: str | None = None,
                 batch_size: int | None = None, auth_token: str | None = None,
                 quiet: bool = True) -> Any:
    """Apply a model served by ``mlem serve`` at ``url``, one HTTP request per batch.

    ``data`` is a file path/URL (any format :func:`apply_file` reads) or an in-memory
    value; the server validates each batch against the model's schema.

    Returns:
        An :class:`ApplySummary` when ``output`` is given, else all predictions.

    Example:
        >>> apply_remote("http://127.0.0.1:8080", "data/test.csv",
        ...              output="preds.csv")  # doctest: +SKIP
    """
    from mlem_lib.client import HTTPClient
    from mlem_lib.data.base import parse_data_type
    from mlem_lib.formats import open_source, output_format

    size = _batch_size(batch_size, DEFAULT_REMOTE_BATCH_SIZE)
    if output is not None:
        output_format(output)
    source = open_source(data)
    with HTTPClient(url, auth_token=auth_token) as client:
        if method not in client.methods:
            from mlem_lib.errors import MethodNotFoundError

            raise MethodNotFoundError(f"the server at {url} has no method '{method}' (it "
                                      f"has: {', '.join(client.methods) or 'none'})")
        args = client.interface["methods"][method].get("args") or [{}]
        arg_type = parse_data_type(args[0].get("data_type"))

        def predict(chunk: Any) -> Any:
            # validated here too, so a bad file fails on its first chunk before any request
            chunk = arg_type.validate_value(adapt_chunk(chunk, arg_type))
            return client.call(method, chunk)

        return _run(source, predict, data, method, output, size, quiet)
