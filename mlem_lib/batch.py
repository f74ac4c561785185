"""Batch prediction over files of any size: read, predict and write in chunks.

Peak memory depends on the batch size, not on the file size; output rows keep the
input's order; the input is checked against the method's saved schema before any
prediction is made; the output appears atomically (a failed run leaves none).
Readers live in :mod:`mlem_lib.formats`, writers in :mod:`mlem_lib.sinks`.

Example:
    >>> import tempfile, pandas as pd
    >>> from mlem_lib.runner import LoadedModel
    >>> double = LoadedModel.from_object(lambda df: df["x"] * 2,
    ...                                  sample_data=pd.DataFrame({"x": [1.0]}))
    >>> folder = tempfile.mkdtemp()
    >>> pd.DataFrame({"x": [1.0, 2.0, 3.0]}).to_csv(f"{folder}/in.csv", index=False)
    >>> summary = apply_file(double, f"{folder}/in.csv", output=f"{folder}/out.parquet",
    ...                      batch_size=2)
    >>> summary.rows, summary.batches, pd.read_parquet(f"{folder}/out.parquet")["x"].tolist()
    (3, 2, [2.0, 4.0, 6.0])
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, computed_field

from mlem_lib.batch_errors import locate_schema_error, model_call_error
from mlem_lib.data.base import DataType, UnspecifiedType
from mlem_lib.errors import ApplyError, MlemError, ModelCallError, SchemaError
from mlem_lib.formats import Labelled

if TYPE_CHECKING:
    from mlem_lib.formats import Partition, Source
    from mlem_lib.runner import LoadedModel
    from mlem_lib.sinks import Sink

_GENERIC = UnspecifiedType()  # rows and joins of values whose type is not known
#: column-name prefixes of the per-class matrices methods return (see ``output_columns``)
_MATRIX_PREFIXES = ("proba_", "log_proba_", "decision_")

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


@dataclass
class Predictor:
    """A method applied batch by batch, with the data types of its argument and result.

    The argument's type turns each chunk read from the input into a checked batch
    (:meth:`~mlem_lib.data.base.DataType.from_chunk`); the return type counts the rows
    of each result and joins them when they are kept in memory. ``columns`` names the
    columns of 2-D results in tabular outputs (``proba_setosa``...).
    """

    arg_type: DataType
    returns: DataType
    call: Callable[[Any], Any]
    columns: list[str] | None = None

    def __call__(self, chunk: Any) -> Any:
        return self.call(chunk)


@dataclass
class Layout:
    """Which input columns go to the model and which are written next to the predictions.

    Attributes:
        column: the input column a one-column argument (a list of texts, a Series, a 1-D
            array) takes, when the input has several (``mlem apply --column text``).
        keep: input columns written before the predictions (``--keep-columns id``).
        with_input: write every input column before the predictions (``--with-input``).

    Example:
        >>> import pandas as pd
        >>> model_in, kept = Layout(keep=["id"]).split(pd.DataFrame({"id": [7], "x": [1.0]}),
        ...                                            ["x"])
        >>> list(model_in.columns), list(kept.columns)
        (['x'], ['id'])
    """

    column: str | None = None
    keep: list[str] | None = None
    with_input: bool = False

    @property
    def passes_input(self) -> bool:
        return self.with_input or bool(self.keep)

    def split(self, chunk: Any, needed: list[str] | None) -> tuple[Any, Any]:
        """(what the model gets, the input columns to keep or ``None``) of one chunk.

        Raises:
            ApplyError: a named column is not in the input, or the input is not a table.
        """
        if not (self.column or self.passes_input):
            return chunk, None
        import pandas as pd

        if isinstance(chunk, list) and (not chunk or isinstance(chunk[0], dict)):
            chunk = pd.DataFrame.from_records(chunk)
        if not isinstance(chunk, pd.DataFrame):
            raise ApplyError("--column, --keep-columns and --with-input need an input with named "
                             f"columns (CSV, Parquet, JSON Lines), not {type(chunk).__name__}")
        present = [str(c) for c in chunk.columns]
        for name in [*(self.keep or []), *([self.column] if self.column else [])]:
            if name not in present:
                raise ApplyError(f"the input has no column '{name}' (it has: "
                                 f"{', '.join(present[:20])})")
        kept = None
        if self.with_input:
            kept = chunk
        elif self.keep:
            kept = chunk[self.keep]
        if self.column:
            return chunk[self.column], kept
        passthrough = set(present) if self.with_input else set(self.keep or [])
        drop = [c for c in present if c in passthrough and (needed is None or c not in needed)]
        return (chunk.drop(columns=drop) if drop else chunk), kept


def _local_predictor(loaded: LoadedModel, method: str) -> Predictor:
    from mlem_lib.data.base import UnspecifiedType

    sig = loaded.signature(method)  # an unknown method fails here, before any reading
    arg_type = sig.args[0].type_ if sig.args else UnspecifiedType()

    def predict(chunk: Any) -> Any:
        data = arg_type.from_chunk(chunk)
        try:
            return loaded.call(method, data, validate=False)
        except MlemError:
            raise
        except Exception as exc:  # the model's own error: _stream says on which rows
            raise ModelCallError(str(exc)) from exc

    return Predictor(arg_type, sig.returns, predict, sig.output_columns)


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


_END = object()


def _next_chunk(chunks: Iterator[Any], label: str | None) -> Any:
    """The next chunk, or ``_END``; a reader's own exception becomes one ApplyError line."""
    try:
        return next(chunks)
    except StopIteration:
        return _END
    except MlemError:
        raise
    except Exception as exc:
        text = " ".join(str(exc).split())
        raise ApplyError(f"cannot read {label or 'the input'}: {text}") from exc


def _stream(source: Source, predict: Predictor, sink: Sink, batch_size: int,
            quiet: bool, part: Partition | None = None,
            layout: Layout | None = None) -> tuple[Any, int, int, float]:
    """Push every chunk through ``predict`` into ``sink``; abort the sink on any failure."""
    from mlem_lib.sinks import with_input

    layout = layout or Layout()
    needed = predict.arg_type.input_columns()
    start = time.perf_counter()
    rows = batches = 0
    total = source.num_rows() if part is None else None
    bar = _progress(total, quiet, desc="apply")
    label = getattr(source, "label", None)
    with _all_or_nothing(sink, bar):
        chunks = _prefetch(source.chunks(batch_size, part))
        while (chunk := _next_chunk(chunks, label)) is not _END:
            n_in = predict.arg_type.rows(chunk)
            if n_in == 0:  # header-only files, empty row groups: nothing to predict
                continue
            model_in, kept = layout.split(chunk, needed)
            where = ", ".join(chunk.labels) if isinstance(chunk, Labelled) else label
            try:
                result = predict(model_in)
            except SchemaError as exc:
                raise locate_schema_error(exc, chunk, rows, where) from exc
            except ModelCallError as exc:
                raise model_call_error(exc.__cause__ or exc, rows, n_in, where) from exc.__cause__
            n_out = predict.returns.rows(result)
            if n_in is not None and n_out is not None and n_in != n_out:
                raise ApplyError(f"the method returned {n_out} rows for a batch of {n_in}: "
                                 "batch prediction needs one output row per input row")
            if isinstance(chunk, Labelled):  # rows read from files: tables name them
                sink.write_labelled(chunk.labels, result, single=n_in is None)
            else:
                sink.write(result if kept is None else with_input(kept, result, predict.columns))
            n = n_in if n_in is not None else 1
            rows += n
            batches += 1
            bar.update(n)
        value = sink.close()
    return value, rows, batches, time.perf_counter() - start


def _run(source: Source, predict: Predictor, data: Any, method: str,
         output: str | None, batch_size: int, quiet: bool, layout: Layout | None = None
         ) -> Any:
    from mlem_lib.sinks import open_sink

    passes_input = layout is not None and layout.passes_input
    # predictions with input columns beside them are tables, joined as tables
    sink = open_sink(output, None if passes_input else predict.returns, predict.columns)
    value, rows, batches, seconds = _stream(source, predict, sink, batch_size, quiet,
                                            layout=layout)
    if output is None:
        if getattr(source, "one_file", False) and getattr(sink, "answers", None):
            return value[0]  # one call on one named file: its answer, as a direct call gives
        return value
    return ApplySummary(data=_label(data), output=output, method=method, rows=rows,
                        batches=batches, seconds=seconds)


def apply_file(loaded: LoadedModel, data: Any, method: str = "predict",
               output: str | None = None, batch_size: int | None = None,
               quiet: bool = True, layout: Layout | None = None) -> Any:
    """Apply a model method to a file, streaming it in chunks.

    Args:
        loaded: the model.
        data: path or fsspec URL of a CSV, Parquet, JSON Lines or ``.npy`` file, or of
            a MLEM data object (``*.mlem`` with ``object_type: data``); or an in-memory
            table.
        method: the method to call.
        output: where predictions go (format from the extension: ``.csv``,
            ``.parquet``, ``.jsonl``, ``.json``, ``.npy``; CSV and JSON may be compressed,
            ``.csv.gz``); ``None`` returns them in memory.
        batch_size: rows per chunk (default :data:`DEFAULT_BATCH_SIZE`).
        quiet: no progress bar (there is none anyway when stderr is not a terminal).
        layout: the input column the model takes and the input columns kept beside the
            predictions (:class:`Layout`).

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
        >>> import tempfile, numpy as np
        >>> from mlem_lib.runner import LoadedModel
        >>> total = LoadedModel.from_object(lambda a: a.sum(axis=1), sample_data=np.ones((1, 2)))
        >>> path = tempfile.mkdtemp() + "/rows.npy"
        >>> np.save(path, np.arange(6.0).reshape(3, 2))
        >>> apply_file(total, path)
        array([1., 5., 9.])
    """
    from mlem_lib.formats import open_source, output_format

    size = _batch_size(batch_size, DEFAULT_BATCH_SIZE)
    predict = _local_predictor(loaded, method)
    if output is not None:
        output_format(output)  # a bad output extension fails before any reading
    source = open_source(data, predict.arg_type)
    return _run(source, predict, data, method, output, size, quiet, layout)


def check_input(loaded: LoadedModel, data: Any, method: str = "predict",
                batch_size: int = 1000) -> None:
    """Validate the first chunk of ``data`` against the method's schema without predicting.

    Raises:
        SchemaError: naming the missing or mistyped column.

    Example:
        >>> import tempfile, pandas as pd
        >>> from mlem_lib.runner import LoadedModel
        >>> model = LoadedModel.from_object(lambda df: df["x"], pd.DataFrame({"x": [1.0]}))
        >>> path = tempfile.mkdtemp() + "/in.csv"
        >>> pd.DataFrame({"y": [1.0]}).to_csv(path, index=False)
        >>> check_input(model, path)
        Traceback (most recent call last):
        ...
        mlem_lib.errors.SchemaError: missing column 'x' (expected columns: x)
    """
    from mlem_lib.formats import open_source

    arg_type = _local_predictor(loaded, method).arg_type
    for chunk in open_source(data, arg_type).chunks(batch_size):
        arg_type.from_chunk(chunk)
        break


def apply_partition(loaded: LoadedModel, data: str, partition: Partition, method: str,
                    output: str, batch_size: int | None = None,
                    layout: Layout | None = None) -> ApplySummary:
    """Predict one partition of an input file into its own output file.

    Example:
        >>> import tempfile, numpy as np
        >>> from mlem_lib.runner import LoadedModel
        >>> twice = LoadedModel.from_object(lambda a: a * 2, sample_data=np.ones(3))
        >>> folder = tempfile.mkdtemp()
        >>> np.save(f"{folder}/in.npy", np.arange(10.0))
        >>> first = plan_partitions(f"{folder}/in.npy", 2)[0]
        >>> apply_partition(twice, f"{folder}/in.npy", first, "predict", f"{folder}/p0.npy").rows
        5
        >>> np.load(f"{folder}/p0.npy").tolist()
        [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    from mlem_lib.formats import open_source
    from mlem_lib.sinks import open_sink

    size = _batch_size(batch_size, DEFAULT_BATCH_SIZE)
    predict = _local_predictor(loaded, method)
    sink = open_sink(output, None, predict.columns)
    _, rows, batches, seconds = _stream(open_source(data, predict.arg_type), predict, sink,
                                        size, quiet=True, part=partition, layout=layout)
    return ApplySummary(data=f"{data}[{partition.unit} {partition.start}:{partition.stop}]",
                        output=output, method=method, rows=rows, batches=batches,
                        seconds=seconds)


def plan_partitions(data: str, partitions: int, data_type: DataType | None = None
                    ) -> list[Partition]:
    """Split an input file into at most ``partitions`` contiguous parts, in order.

    ``data_type`` (the argument's) is asked first for a reader of the file, as in
    :func:`apply_file`.

    Example:
        >>> import tempfile, pandas as pd
        >>> path = tempfile.mkdtemp() + "/big.csv"
        >>> pd.DataFrame({"x": range(1000)}).to_csv(path, index=False)
        >>> [(p.unit, p.start) for p in plan_partitions(path, 2)]
        [('bytes', 0), ('bytes', 1946)]
    """
    from mlem_lib.formats import open_source

    if partitions < 1:
        raise ApplyError(f"the number of partitions must be at least 1, got {partitions}")
    return open_source(data, data_type).partitions(partitions)


def merge_outputs(parts: list[str], output: str | None, batch_size: int | None = None,
                  quiet: bool = True) -> Any:
    """Concatenate partition outputs, in the given order, into ``output`` (atomically).

    With ``output=None`` the predictions are returned in memory.

    Example:
        >>> import tempfile, pandas as pd
        >>> folder = tempfile.mkdtemp()
        >>> for i in (0, 1):
        ...     pd.DataFrame({"prediction": [i, i]}).to_parquet(f"{folder}/p{i}.parquet")
        >>> merge_outputs([f"{folder}/p0.parquet", f"{folder}/p1.parquet"], None)
        array([0, 0, 1, 1])
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
            n = _GENERIC.rows(piece) or 0
            rows += n
            bar.update(n)
        value = sink.close()
    if output is None:
        return value
    return ApplySummary(data=f"{len(parts)} partitions", output=output, method="merge",
                        rows=rows, batches=len(parts), seconds=time.perf_counter() - start)


def _unframe(piece: Any) -> Any:
    """A single ``prediction`` column read back from a part file becomes an array again."""
    if hasattr(piece, "columns"):
        cols = [str(c) for c in piece.columns]
        if cols == ["prediction"]:
            return piece["prediction"].to_numpy()
        if cols and all(c == f"prediction_{i}" for i, c in enumerate(cols)):
            return piece.to_numpy()
        if cols and any(all(c.startswith(p) for c in cols) for p in _MATRIX_PREFIXES):
            return piece.to_numpy()  # proba_<label>...: one matrix of a predict_proba
    return piece


def apply_remote(url: str, data: Any, method: str = "predict", output: str | None = None,
                 batch_size: int | None = None, auth_token: str | None = None,
                 quiet: bool = True, layout: Layout | None = None) -> Any:
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
    from mlem_lib.formats import open_source, output_format

    size = _batch_size(batch_size, DEFAULT_REMOTE_BATCH_SIZE)
    if output is not None:
        output_format(output)
    with HTTPClient(url, auth_token=auth_token) as client:
        arg_type = client.arg_type(method)  # an unknown method fails here, before reading
        source = open_source(data, arg_type)

        def call(chunk: Any) -> Any:
            # checked here too, so a bad file fails on its first chunk before any request
            return client.call(method, arg_type.from_chunk(chunk))

        predict = Predictor(arg_type, client.return_type(method), call,
                            client.output_columns(method))
        return _run(source, predict, data, method, output, size, quiet, layout)
