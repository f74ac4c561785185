"""Atomic, chunked writers of predictions: CSV, Parquet, JSON Lines, JSON and ``.npy``.

A *sink* appends prediction chunks to a local temporary file and moves it into place
only when everything was written (a rename for local paths, a single upload for
remote URLs), so a failed run leaves no partial output behind. ``open_sink(None)``
collects predictions in memory instead.

Example:
    >>> sink = open_sink(None)
    >>> sink.write([1, 2]); sink.write([3])
    >>> sink.close()
    [1, 2, 3]
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import struct
import tempfile
import uuid
from typing import TYPE_CHECKING, Any

from mlem_lib.errors import ApplyError
from mlem_lib.formats import output_format
from mlem_lib.storage import get_fs, is_local

if TYPE_CHECKING:
    from mlem_lib.data.base import DataType


def as_frame(result: Any, columns: list[str] | None = None) -> Any:
    """Predictions as a DataFrame with string column names, for tabular outputs.

    A 1-D result becomes the column ``prediction``; a 2-D one takes ``columns`` (the
    names saved with the method, such as ``proba_setosa`` for ``predict_proba``) or
    ``prediction_0``, ``prediction_1``...; DataFrames keep their columns; a dict of
    equally long arrays (a model returning several outputs) gives one column per key,
    ``key_0``, ``key_1``... for 2-D values.

    Example:
        >>> list(as_frame([[0.1, 0.9]]).columns)
        ['prediction_0', 'prediction_1']
        >>> list(as_frame([[0.1, 0.9]], ["proba_no", "proba_yes"]).columns)
        ['proba_no', 'proba_yes']
        >>> as_frame({"label": [1, 0], "score": [0.9, 0.2]}).to_dict("list")
        {'label': [1, 0], 'score': [0.9, 0.2]}
    """
    import numpy as np
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        frame = result.reset_index(drop=True)
    elif isinstance(result, pd.Series):
        frame = result.reset_index(drop=True).to_frame(
            "prediction" if result.name is None else str(result.name))
    elif isinstance(result, dict) and result and _rows_of_dict(result) is not None:
        frame = pd.concat([as_frame(v, None).pipe(_prefixed, str(k))
                           for k, v in result.items()], axis=1)
    elif isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        frame = pd.DataFrame.from_records(result)
    else:
        arr = np.asarray(result)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim == 1:
            frame = pd.DataFrame({"prediction": arr})
        elif arr.ndim == 2:
            names = columns if columns is not None and len(columns) == arr.shape[1] else [
                f"prediction_{j}" for j in range(arr.shape[1])]
            frame = pd.DataFrame(arr, columns=names)
        else:
            raise ApplyError(f"predictions with {arr.ndim} dimensions do not fit in a table: "
                             "write them to a .npy file")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _rows_of_dict(result: dict[Any, Any]) -> int | None:
    """The common row count of a dict's values (arrays, lists, Series), else ``None``."""
    counts = set()
    for value in result.values():
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape):
            counts.add(int(shape[0]))
        elif isinstance(value, list | tuple):
            counts.add(len(value))
        else:
            return None
    return counts.pop() if len(counts) == 1 else None


def _prefixed(frame: Any, key: str) -> Any:
    """Columns of one dict value named after its key: ``key`` or ``key_0``, ``key_1``..."""
    if list(frame.columns) == ["prediction"]:
        frame.columns = [key]
    else:
        frame.columns = [f"{key}_{c.rsplit('_', 1)[-1]}" if c.startswith("prediction_")
                         else f"{key}_{c}" for c in map(str, frame.columns)]
    return frame


def with_input(passthrough: Any, predictions: Any, columns: list[str] | None = None) -> Any:
    """The input columns to keep (``apply --keep-columns``) next to the predictions.

    Raises:
        ApplyError: an input column has the name of a prediction column, or the row counts
            differ.

    Example:
        >>> import pandas as pd
        >>> with_input(pd.DataFrame({"id": [7, 8]}), [1, 0]).to_dict("list")
        {'id': [7, 8], 'prediction': [1, 0]}
    """
    import pandas as pd

    frame = as_frame(predictions, columns)
    kept = passthrough.reset_index(drop=True)
    kept.columns = [str(c) for c in kept.columns]
    clash = [c for c in kept.columns if c in set(frame.columns)]
    if clash:
        raise ApplyError(f"the input column '{clash[0]}' has the name of an output column: "
                         "rename it, or leave it out of --keep-columns")
    if len(kept) != len(frame):
        raise ApplyError(f"the method returned {len(frame)} rows for a batch of {len(kept)}: "
                         "input columns can only be kept with one output row per input row")
    return pd.concat([kept, frame], axis=1)


def labelled_frame(labels: list[str], result: Any, columns: list[str] | None = None) -> Any:
    """Predictions for named rows (files) as a table: the names in a ``file`` column first.

    A result for a single file (a model called once per file) is one row: a dict gives its
    columns, anything else the ``prediction`` column.

    Example:
        >>> labelled_frame(["a.wav"], {"says": "woof"}).to_dict("records")
        [{'file': 'a.wav', 'says': 'woof'}]
        >>> labelled_frame(["a.png", "b.png"], [[0.1, 0.9], [0.8, 0.2]]).columns.tolist()
        ['file', 'prediction_0', 'prediction_1']
    """
    import pandas as pd

    if len(labels) == 1 and isinstance(result, dict) and _rows_of_dict(result) is None:
        frame = pd.DataFrame([result])
    elif len(labels) == 1 and (isinstance(result, str | bytes | int | float)
                               or getattr(result, "ndim", None) == 0):
        frame = pd.DataFrame({"prediction": [result]})
    else:
        frame = as_frame(result, columns)
    if len(frame) != len(labels):
        raise ApplyError(f"the method returned {len(frame)} rows for {len(labels)} files: "
                         "batch prediction needs one output row per file")
    frame.insert(0, "file", labels)
    frame.columns = [str(c) for c in frame.columns]
    return frame


class Sink:
    """Where prediction chunks go. ``close`` finishes, ``abort`` throws everything away."""

    #: whether :meth:`write_labelled` puts the row names in the output (tables do)
    tabular = False

    def write(self, result: Any) -> None:
        raise NotImplementedError

    def write_labelled(self, labels: list[str], result: Any, single: bool = False) -> None:
        """Write the predictions for rows read from the files ``labels`` (one per row).

        ``single``: the model was called on one file and ``result`` is its one answer (a
        dict is then one answer, not a batch of columns).
        """
        if self.tabular:
            self.write(labelled_frame(labels, result, getattr(self, "columns", None)))
        elif single:
            self.write_answer(result)
        else:
            self.write(result)

    def write_answer(self, result: Any) -> None:
        """Write the answer of one call on one file (a row of its own)."""
        self.write([result])

    def close(self) -> Any:
        raise NotImplementedError

    def abort(self) -> None:
        """Discard what was written (safe to call more than once)."""


class MemorySink(Sink):
    """Keeps the chunks and concatenates them on ``close`` (no output file).

    Args:
        data_type: the type of the predictions, which joins them (default: by their kind).
    """

    def __init__(self, data_type: DataType | None = None) -> None:
        self.parts: list[Any] = []
        self.answers: list[Any] = []
        self.data_type = data_type

    def write(self, result: Any) -> None:
        self.parts.append(result)

    def write_answer(self, result: Any) -> None:
        self.answers.append(result)

    def close(self) -> Any:
        """The batches joined by the data type; answers of one call per file as a list.

        Example:
            >>> sink = MemorySink()
            >>> sink.write_labelled(["a.wav"], {"says": "woof"}, single=True)
            >>> sink.write_labelled(["b.wav"], {"says": "..."}, single=True)
            >>> sink.close()
            [{'says': 'woof'}, {'says': '...'}]
        """
        if self.answers:
            return list(self.answers)
        return concat(self.parts, self.data_type)

    def abort(self) -> None:
        self.parts = []
        self.answers = []


def concat(parts: list[Any], data_type: DataType | None = None) -> Any:
    """Join prediction chunks back into one value, as their data type says.

    Without a data type, by the kind of the chunks: DataFrames and Series by pandas,
    arrays by numpy, lists chained.

    Example:
        >>> concat([[1, 2], [3]])
        [1, 2, 3]
        >>> from mlem_lib.data.numpy import NumpyNdarrayType
        >>> concat([], NumpyNdarrayType(shape=[None, 3], dtype="float32")).shape
        (0, 3)
    """
    if data_type is None:
        from mlem_lib.data.convert import concat_any

        return concat_any(parts)
    return data_type.concat(parts)


class _AtomicFileSink(Sink):
    """Writes into a local temporary file; ``close`` moves it to the target.

    Local targets get a temporary file next to them and an atomic rename; remote ones
    (s3://...) are uploaded in one ``put`` once complete, so readers never see a
    partial object. ``columns`` names the columns of 2-D predictions.
    """

    def __init__(self, url: str, columns: list[str] | None = None) -> None:
        self.url = url
        self.columns = columns
        self.fs, self.path = get_fs(url)
        self.local = is_local(self.fs)
        if self.local:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
            name = f".{os.path.basename(self.path)}.tmp-{uuid.uuid4().hex[:12]}"
            self.tmp = os.path.join(parent, name)
        else:
            fd, self.tmp = tempfile.mkstemp(prefix="mlem-apply-",
                                            suffix=os.path.basename(self.path))
            os.close(fd)
        self.rows = 0
        self.closed = False

    def _finish(self) -> None:
        """Flush and close the temporary file (subclasses)."""

    def close(self) -> Any:
        self._finish()
        try:
            if self.local:
                with open(self.tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(self.tmp, self.path)
            else:
                parent = posixpath.dirname(self.path)
                if parent:
                    self.fs.makedirs(parent, exist_ok=True)
                self.fs.put_file(self.tmp, self.path)
                os.remove(self.tmp)
        except BaseException:
            self.abort()
            raise
        self.closed = True
        return self.url

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # already failing: the temp file goes anyway
            self._finish()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


class _TextSink(_AtomicFileSink):
    """A sink writing one stream, compressed as the output's extension says (``.gz``...)."""

    def __init__(self, url: str, columns: list[str] | None = None) -> None:
        super().__init__(url, columns)
        from mlem_lib.formats import output_compression

        compression = output_compression(url)
        if compression is None:
            self.f: Any = open(self.tmp, "wb")  # noqa: SIM115
        else:
            from fsspec.compression import compr

            self.raw: Any = open(self.tmp, "wb")  # noqa: SIM115
            self.f = compr[compression](self.raw, mode="wb")

    def _finish(self) -> None:
        if not self.f.closed:
            self.f.close()
        raw = getattr(self, "raw", None)
        if raw is not None and not raw.closed:
            raw.close()


class CsvSink(_TextSink):
    tabular = True

    def __init__(self, url: str, columns: list[str] | None = None) -> None:
        super().__init__(url, columns)
        self.first = True

    def write(self, result: Any) -> None:
        text = as_frame(result, self.columns).to_csv(index=False, header=self.first)
        self.f.write(str(text).encode("utf-8"))
        self.first = False


class JsonLinesSink(_TextSink):
    tabular = True

    def write(self, result: Any) -> None:
        import orjson

        from mlem_lib.data.columns import frame_records

        for row in frame_records(as_frame(result, self.columns)):
            self.f.write(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY))
            self.f.write(b"\n")


class JsonSink(_TextSink):
    """One JSON array of row objects (``[{"prediction": 1}, ...]``), written as it streams."""

    tabular = True

    def __init__(self, url: str, columns: list[str] | None = None) -> None:
        super().__init__(url, columns)
        self.f.write(b"[")
        self.first = True

    def write(self, result: Any) -> None:
        import orjson

        from mlem_lib.data.columns import frame_records

        for row in frame_records(as_frame(result, self.columns)):
            if not self.first:
                self.f.write(b",\n")
            self.f.write(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY))
            self.first = False

    def close(self) -> Any:
        self.f.write(b"]\n")
        return super().close()


class ParquetSink(_AtomicFileSink):
    tabular = True

    def __init__(self, url: str, columns: list[str] | None = None) -> None:
        super().__init__(url, columns)
        self.writer: Any = None

    def write(self, result: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(as_frame(result, self.columns), preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        elif table.schema != self.writer.schema:
            try:
                table = table.cast(self.writer.schema)
            except (pa.ArrowInvalid, ValueError) as exc:
                raise ApplyError(f"predictions changed their columns or types between "
                                 f"batches ({exc}); cannot write one Parquet file") from None
        self.writer.write_table(table)

    def _finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def close(self) -> Any:
        if self.writer is None:  # no rows at all: still a valid (empty) Parquet file
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({}), self.tmp)
        return super().close()


class NpySink(_AtomicFileSink):
    """Appends rows to a ``.npy`` body; the header (with the final shape) is rewritten last."""

    HEADER_BYTES = 256

    def __init__(self, url: str, columns: list[str] | None = None) -> None:
        super().__init__(url, columns)
        self.f: Any = open(self.tmp, "wb")  # noqa: SIM115
        self.dtype: Any = None
        self.inner: tuple[int, ...] = ()
        self.f.write(b"\0" * self.HEADER_BYTES)

    def write(self, result: Any) -> None:
        import numpy as np

        arr = np.asarray(result)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.dtype.hasobject:
            raise ApplyError("predictions are Python objects: they cannot be written to .npy")
        if self.dtype is None:
            self.dtype, self.inner = arr.dtype, tuple(arr.shape[1:])
        elif tuple(arr.shape[1:]) != self.inner:
            raise ApplyError(f"predictions changed shape between batches ({self.inner} vs "
                             f"{tuple(arr.shape[1:])}); cannot write one .npy file")
        elif arr.dtype != self.dtype:
            if not np.can_cast(arr.dtype, self.dtype, "same_kind"):
                raise ApplyError(f"predictions changed dtype between batches ({self.dtype} vs "
                                 f"{arr.dtype}); cannot write one .npy file")
            arr = arr.astype(self.dtype)
        self.f.write(np.ascontiguousarray(arr).tobytes())
        self.rows += arr.shape[0]

    def _header(self) -> bytes:
        import numpy as np

        dtype = self.dtype if self.dtype is not None else np.dtype("float64")
        descr = np.lib.format.dtype_to_descr(dtype)
        shape = (self.rows, *self.inner)
        text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
        room = self.HEADER_BYTES - 10 - len(text) - 1
        if room < 0:
            raise ApplyError("the .npy header of these predictions is too long")
        body = (text + " " * room + "\n").encode("latin1")
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body

    def _finish(self) -> None:
        if not self.f.closed:
            self.f.seek(0)
            self.f.write(self._header())
            self.f.close()


def open_sink(output: str | None, data_type: DataType | None = None,
              columns: list[str] | None = None) -> Sink:
    """A writer for predictions: the format comes from the output's extension.

    ``None`` collects the predictions in memory instead (joined by ``data_type``, the
    method's return type, when given). ``columns`` names the columns of 2-D predictions
    in tabular outputs (``proba_setosa``...). CSV and JSON outputs may be compressed
    (``preds.csv.gz``).

    Raises:
        ApplyError: unsupported output extension.

    Example:
        >>> import tempfile, os, pandas as pd
        >>> path = os.path.join(tempfile.mkdtemp(), "preds.parquet")
        >>> sink = open_sink(path)
        >>> sink.write([0.5, 1.5]); sink.write([2.5])
        >>> sink.close() == path, pd.read_parquet(path)["prediction"].tolist()
        (True, [0.5, 1.5, 2.5])
    """
    if output is None:
        return MemorySink(data_type)
    fmt = output_format(output)
    sinks: dict[str, type[_AtomicFileSink]] = {"csv": CsvSink, "parquet": ParquetSink,
                                               "jsonl": JsonLinesSink, "npy": NpySink,
                                               "json": JsonSink}
    return sinks[fmt](output, columns)
