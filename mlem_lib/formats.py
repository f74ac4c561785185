"""Batch data formats and chunked readers: CSV, Parquet, JSON Lines, ``.npy``, MLEM data.

A *source* yields the rows of an input file (or of in-memory data) in chunks of a
bounded number of rows, optionally only those of one :class:`Partition` (a byte
range, a row range or a run of Parquet row groups). Files are opened through
fsspec, so any URL works. The writers are in :mod:`mlem_lib.sinks`.

Example:
    >>> import tempfile, pandas as pd
    >>> path = tempfile.mkdtemp() + "/test.parquet"
    >>> pd.DataFrame({"x": range(25)}).to_parquet(path)
    >>> src = open_source(path)
    >>> src.num_rows(), [len(chunk) for chunk in src.chunks(10)]
    (25, [10, 10, 5])
"""

from __future__ import annotations

import io
import math
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from mlem_lib.errors import ApplyError, MetadataError, ObjectNotFoundError
from mlem_lib.storage import get_fs, is_local

if TYPE_CHECKING:
    from mlem_lib.data.base import DataType

INPUT_FORMATS: dict[str, str] = {
    ".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
    ".ndjson": "jsonl", ".npy": "npy", ".mlem": "mlem",
}
OUTPUT_FORMATS: dict[str, str] = {
    ".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
    ".ndjson": "jsonl", ".npy": "npy", ".json": "json",
}
#: Text formats that may be compressed (``preds.csv.gz``): any compression fsspec knows.
COMPRESSIBLE = ("csv", "jsonl", "json")
SUPPORTED_INPUTS = (".csv, .parquet, .jsonl, .npy (CSV/JSON Lines may end in .gz, .bz2, .xz) "
                    "or a data .mlem")
SUPPORTED_OUTPUTS = (".csv, .parquet, .jsonl, .json or .npy (CSV and JSON may end in .gz, "
                     ".bz2, .xz)")


def compressions() -> dict[str, str]:
    """Extension (with the dot) -> fsspec compression name, for every codec fsspec knows
    here (``.gz``, ``.bz2``, ``.xz``, ``.lzma``, plus ``.zst``/``.lz4``... when their
    libraries are installed).

    Example:
        >>> compressions()[".gz"]
        'gzip'
    """
    from fsspec.compression import compr
    from fsspec.utils import compressions as by_ext

    return {f".{ext}": name for ext, name in by_ext.items()
            if name in compr and name != "zip"}


class Partition(BaseModel):
    """A contiguous slice of an input file: rows ``[start, stop)`` in some unit.

    ``unit`` is ``bytes`` for CSV and JSON Lines (a line belongs to the partition its
    first byte falls in), ``rows`` for ``.npy`` and in-memory data, ``row_groups`` for
    Parquet.
    """

    index: int
    start: int
    stop: int
    unit: Literal["bytes", "rows", "row_groups"]


def _split_ext(url: str) -> tuple[str, str | None]:
    """(format extension, compression) of a path or URL, lower case."""
    name = posixpath.basename(url.split("?", 1)[0]).lower()
    root, ext = posixpath.splitext(name)
    compression = compressions().get(ext)
    if compression is not None:
        ext = posixpath.splitext(root)[1]
    return ext, compression


def output_format(url: str) -> str:
    """The format predictions are written in, from the output's extension.

    Raises:
        ApplyError: for an extension no writer knows.

    Example:
        >>> output_format("s3://bucket/preds.parquet")
        'parquet'
    """
    ext, compression = _split_ext(url)
    fmt = OUTPUT_FORMATS.get(ext)
    if fmt is None or (compression is not None and fmt not in COMPRESSIBLE):
        raise ApplyError(f"cannot write predictions to {url}: the output must end in "
                         f"{SUPPORTED_OUTPUTS}")
    return fmt


def output_compression(url: str) -> str | None:
    """The compression of an output file, from its last extension (``gzip`` for
    ``preds.csv.gz``), or ``None``.

    Example:
        >>> output_compression("preds.csv.gz"), output_compression("preds.csv")
        ('gzip', None)
    """
    return _split_ext(url)[1]


def _ranges(total: int, n: int) -> list[tuple[int, int]]:
    n = max(1, min(n, total)) if total else 1
    step = math.ceil(total / n) if total else 0
    return [(i * step, min(total, (i + 1) * step)) for i in range(n) if i * step < total] or [
        (0, 0)]


def _rows_of(obj: Any) -> int:
    shape = getattr(obj, "shape", None)
    if shape is not None and len(shape):
        return int(shape[0])
    try:
        return len(obj)
    except TypeError:
        return 1


# --- sources -----------------------------------------------------------------------------

class Source:
    """Rows of some input, read in chunks."""

    label: str = "data"

    def num_rows(self) -> int | None:
        """The number of rows when known without reading the data (for progress bars)."""
        return None

    def chunks(self, batch_size: int, part: Partition | None = None) -> Iterator[Any]:
        """Yield the rows (of ``part``, or all) in order, at most ``batch_size`` at a time."""
        raise NotImplementedError

    def partitions(self, n: int) -> list[Partition]:
        """Split the input into at most ``n`` contiguous partitions, in order."""
        raise NotImplementedError


@dataclass(frozen=True)
class Labelled:
    """A chunk whose rows have names (the files they were read from).

    Sources over many files (images, audio) yield these; the data type that made the
    source takes the value back in ``from_chunk``, and table sinks write the names in a
    ``file`` column next to the predictions.
    """

    value: Any
    labels: list[str]


class MemorySource(Source):
    """An in-memory DataFrame, array or list, sliced into chunks."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.label = type(obj).__name__

    def _sliceable(self) -> bool:
        return hasattr(self.obj, "iloc") or hasattr(self.obj, "shape") or isinstance(
            self.obj, list | tuple)

    def num_rows(self) -> int | None:
        return _rows_of(self.obj) if self._sliceable() else 1

    def _slice(self, a: int, b: int) -> Any:
        if hasattr(self.obj, "iloc"):
            return self.obj.iloc[a:b]
        return self.obj[a:b]

    def chunks(self, batch_size: int, part: Partition | None = None) -> Iterator[Any]:
        if not self._sliceable() or getattr(self.obj, "ndim", 1) == 0:
            yield self.obj
            return
        total = _rows_of(self.obj)
        start, stop = (part.start, part.stop) if part else (0, total)
        for a in range(start, stop, batch_size):
            yield self._slice(a, min(stop, a + batch_size))

    def partitions(self, n: int) -> list[Partition]:
        total = self.num_rows() or 0
        return [Partition(index=i, start=a, stop=b, unit="rows")
                for i, (a, b) in enumerate(_ranges(total, n))]


class _FileSource(Source):
    def __init__(self, fs: Any, path: str, label: str, compression: str | None = None) -> None:
        self.fs = fs
        self.path = path
        self.label = label
        self.compression = compression

    def _byte_partitions(self, n: int) -> list[Partition]:
        if self.compression is not None:  # a compressed stream cannot be entered midway
            n = 1
        size = int(self.fs.size(self.path))
        return [Partition(index=i, start=a, stop=b, unit="bytes")
                for i, (a, b) in enumerate(_ranges(size, n))]


class _LineRange(io.RawIOBase):
    """The lines of ``f`` whose first byte lies in ``[start, stop)``, as a byte stream.

    ``start`` may fall inside a line: that line belongs to the previous range. Lines
    end with ``\\n``; quoted CSV fields that contain newlines are not supported here.
    """

    def __init__(self, f: Any, start: int, stop: int, data_start: int) -> None:
        super().__init__()
        self.f = f
        if start <= data_start:
            f.seek(data_start)
        else:
            f.seek(start - 1)
            f.readline()
        self.pos = f.tell()
        self.stop = stop
        self.tail = b""
        self.done = self.pos >= stop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.tail:
            if self.done:
                return 0
            data = self.f.read(min(len(buffer), self.stop - self.pos))
            self.pos += len(data)
            if not data:
                self.done = True
                return 0
            if self.pos >= self.stop:
                self.done = True
                if not data.endswith(b"\n"):  # finish the line that crosses the end
                    data += self.f.readline()
            self.tail = data
        n = min(len(buffer), len(self.tail))
        buffer[:n] = self.tail[:n]
        self.tail = self.tail[n:]
        return n


def _drop_unnamed(df: Any) -> Any:
    unnamed = [c for c in df.columns if str(c).startswith("Unnamed: ")]
    return df.drop(columns=unnamed) if unnamed else df


class CsvSource(_FileSource):
    """A CSV file with a header line; partitions are byte ranges split at line ends.

    ``options`` go to ``pandas.read_csv``: the argument type's
    :meth:`~mlem_lib.data.base.DataType.csv_read_options`, so each column is read as the
    saved schema says (text stays text, only an empty cell is a missing string).
    """

    def __init__(self, fs: Any, path: str, label: str, compression: str | None = None,
                 options: dict[str, Any] | None = None) -> None:
        super().__init__(fs, path, label, compression)
        self.options = dict(options or {})

    def _header(self, f: Any) -> tuple[list[str], int]:
        import csv

        line = f.readline()
        names = next(csv.reader([line.decode("utf-8-sig").rstrip("\r\n")]), [])
        return names, f.tell()

    def chunks(self, batch_size: int, part: Partition | None = None) -> Iterator[Any]:
        import pandas as pd

        if part is None:
            with self.fs.open(self.path, "rb", compression=self.compression) as f:
                try:
                    reader = pd.read_csv(f, chunksize=batch_size, **self.options)
                except pd.errors.EmptyDataError:
                    return
                with reader:
                    for df in reader:
                        yield _drop_unnamed(df)
            return
        with self.fs.open(self.path, "rb") as f:
            names, data_start = self._header(f)
            keep = [n for n in names if n and not n.startswith("Unnamed: ")]
            stream = io.BufferedReader(_LineRange(f, part.start, part.stop, data_start))
            try:
                reader = pd.read_csv(stream, header=None, names=[n or f"Unnamed: {i}" for i, n
                                                                  in enumerate(names)],
                                     usecols=keep, chunksize=batch_size, **self.options)
            except pd.errors.EmptyDataError:
                return
            with reader:
                yield from reader

    def partitions(self, n: int) -> list[Partition]:
        return self._byte_partitions(n)


class JsonLinesSource(_FileSource):
    """One JSON value per line; chunks are lists of the decoded values."""

    def chunks(self, batch_size: int, part: Partition | None = None) -> Iterator[Any]:
        import orjson

        if part is None:
            f = self.fs.open(self.path, "rb", compression=self.compression)
            lines: Any = f
        else:
            f = self.fs.open(self.path, "rb")
            lines = io.BufferedReader(_LineRange(f, part.start, part.stop, 0))
        with f:
            batch: list[Any] = []
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    batch.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    where = f"line {number}" if part is None else f"byte {part.start}+"
                    raise ApplyError(f"{self.label}, {where}: not valid JSON ({exc})") from None
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
            if batch:
                yield batch

    def partitions(self, n: int) -> list[Partition]:
        return self._byte_partitions(n)


class ParquetSource(_FileSource):
    """A Parquet file read batch by batch; partitions are runs of row groups."""

    def chunks(self, batch_size: int, part: Partition | None = None) -> Iterator[Any]:
        import pyarrow.parquet as pq

        with self.fs.open(self.path, "rb") as f:
            # Without pre-buffering and one row group at a time, pyarrow holds a single
            # row group in memory; otherwise its read-ahead grows with the file.
            pf = pq.ParquetFile(f, pre_buffer=False)
            groups = range(part.start, part.stop) if part else range(pf.num_row_groups)
            for group in groups:
                for batch in pf.iter_batches(batch_size=batch_size, row_groups=[group]):
                    yield batch.to_pandas()

    def _metadata(self) -> Any:
        import pyarrow.parquet as pq

        with self.fs.open(self.path, "rb") as f:
            return pq.ParquetFile(f).metadata

    def num_rows(self) -> int | None:
        return int(self._metadata().num_rows)

    def partitions(self, n: int) -> list[Partition]:
        meta = self._metadata()
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        if not sizes:
            return [Partition(index=0, start=0, stop=0, unit="row_groups")]
        target = sum(sizes) / max(1, min(n, len(sizes)))
        parts: list[Partition] = []
        start, acc = 0, 0
        for i, size in enumerate(sizes):
            acc += size
            remaining_groups = len(sizes) - i - 1
            if (acc >= target * (len(parts) + 1) or remaining_groups == 0) and len(parts) < n:
                parts.append(Partition(index=len(parts), start=start, stop=i + 1,
                                       unit="row_groups"))
                start = i + 1
        if start < len(sizes):  # n reached: the rest joins the last partition
            parts[-1] = parts[-1].model_copy(update={"stop": len(sizes)})
        return parts


class NpySource(_FileSource):
    """A ``.npy`` array split along its first axis (memory-mapped when local)."""

    def __init__(self, fs: Any, path: str, label: str, compression: str | None = None) -> None:
        super().__init__(fs, path, label, compression)
        import numpy as np

        with fs.open(path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
            except ValueError as exc:
                raise ApplyError(f"{label} is not a .npy file: {exc}") from None
            self.offset = f.tell()
        if not shape:
            raise ApplyError(f"{label} holds a 0-dimensional array: nothing to split into rows")
        if dtype.hasobject:
            raise ApplyError(f"{label} holds Python objects (a pickled array): refusing to "
                             "load it")
        self.shape: tuple[int, ...] = tuple(shape)
        self.fortran = bool(fortran)
        self.dtype = dtype

    def num_rows(self) -> int | None:
        return self.shape[0]

    def chunks(self, batch_size: int, part: Partition | None = None) -> Iterator[Any]:
        import numpy as np

        start, stop = (part.start, part.stop) if part else (0, self.shape[0])
        if is_local(self.fs):
            array = np.load(self.path, mmap_mode="r", allow_pickle=False)
            for a in range(start, stop, batch_size):
                yield np.array(array[a:min(stop, a + batch_size)])
            del array
            return
        n, inner = self.shape[0], self.shape[1:]
        row_items = math.prod(inner)
        size = self.dtype.itemsize
        with self.fs.open(self.path, "rb") as f:
            for a in range(start, stop, batch_size):
                b = min(stop, a + batch_size)
                if not self.fortran:
                    f.seek(self.offset + a * row_items * size)
                    body = f.read((b - a) * row_items * size)
                    yield np.frombuffer(body, dtype=self.dtype).reshape((b - a, *inner))
                    continue
                # Fortran order: the first axis varies fastest, so each of the
                # row_items "columns" holds rows a..b contiguously.
                out = np.empty((b - a, row_items), dtype=self.dtype)
                for j in range(row_items):
                    f.seek(self.offset + (j * n + a) * size)
                    out[:, j] = np.frombuffer(f.read((b - a) * size), dtype=self.dtype)
                yield out.reshape((b - a, *inner), order="F")

    def partitions(self, n: int) -> list[Partition]:
        return [Partition(index=i, start=a, stop=b, unit="rows")
                for i, (a, b) in enumerate(_ranges(self.shape[0], n))]


def _data_object_source(url: str) -> Source:
    from mlem_lib import mlemfile
    from mlem_lib.errors import ArtifactIntegrityError
    from mlem_lib.meta import DataMeta, main_artifact
    from mlem_lib.objects import load_object
    from mlem_lib.storage import file_matches, resolve_artifact

    meta, fs, meta_path = mlemfile.read(url)
    if not isinstance(meta, DataMeta):
        raise MetadataError(f"{url} is a model, not a data object")
    streamable = {"parquet": ParquetSource, "npy": NpySource, "csv": CsvSource}
    cls = streamable.get(meta.format)
    art = main_artifact(meta.artifacts)
    if cls is None or art is None:
        return MemorySource(load_object(meta, fs, meta_path))
    path = resolve_artifact(meta_path, art.uri, fs)
    try:
        matches = file_matches(fs, path, size=art.size, digest=art.hash,
                               algorithm=art.hash_algorithm)
    except FileNotFoundError:
        raise ObjectNotFoundError(f"artifact {path} of {url} is missing") from None
    if not matches:
        raise ArtifactIntegrityError(f"artifact {path} of {url} does not match its metadata "
                                     "(size or hash differ): it was modified or truncated")
    return cls(fs, path, url)


def open_source(data: Any, data_type: DataType | None = None) -> Source:
    """A chunked reader for a file path/URL (format from its extension) or in-memory data.

    ``data_type``, the type of the method's argument, is asked first
    (:meth:`~mlem_lib.data.base.DataType.open_source`): a type of images or audio reads
    its own files. A path without a known extension is taken as a MLEM data object when
    ``<path>.mlem`` exists.

    Raises:
        ObjectNotFoundError: the file does not exist.
        ApplyError: the format cannot be told from the extension.

    Example:
        >>> import numpy as np
        >>> [len(c) for c in open_source(np.zeros((5, 2))).chunks(2)]
        [2, 2, 1]
    """
    if not isinstance(data, str | os.PathLike):
        return MemorySource(data)
    url = os.fspath(data)
    own = data_type.open_source(url) if data_type is not None else None
    if own is not None:
        return own
    ext, compression = _split_ext(url)
    fmt = INPUT_FORMATS.get(ext)
    fs, path = get_fs(url)
    if fmt is None and fs.exists(path + ".mlem"):
        fmt = "mlem"
    if fmt == "mlem":
        return _data_object_source(url)
    if fmt is None:
        raise ApplyError(f"cannot tell the format of {url} from its extension: use "
                         f"{SUPPORTED_INPUTS}")
    if not fs.exists(path):
        raise ObjectNotFoundError(f"no data at {url}")
    if compression is not None and fmt not in ("csv", "jsonl"):
        raise ApplyError(f"{url}: only CSV and JSON Lines inputs may be compressed")
    if fmt == "csv":
        options = data_type.csv_read_options() if data_type is not None else None
        return CsvSource(fs, path, url, compression, options)
    cls: dict[str, type[_FileSource]] = {"parquet": ParquetSource,
                                         "jsonl": JsonLinesSource, "npy": NpySource}
    return cls[fmt](fs, path, url, compression)
