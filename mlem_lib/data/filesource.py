"""One row per file: a source over a file, a folder or a glob, for types that read files.

Data types whose values are whole files (images, audio, any bytes) read them through a
:class:`FilesSource` from their :meth:`~mlem_lib.data.base.DataType.open_source`:
``mlem apply MODEL clip.wav``, ``mlem apply MODEL 'images/*.png' -o preds.csv``. Each
chunk is a :class:`~mlem_lib.formats.Labelled` value that carries the names of its files,
so table outputs get one row per file with its name in a ``file`` column.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> for name in ("b.bin", "a.bin"):
    ...     with open(os.path.join(folder, name), "wb") as f:
    ...         _ = f.write(name.encode())
    >>> src = FilesSource(os.path.join(folder, "*.bin"), lambda body, name: body)
    >>> [(c.labels[0].rsplit("/", 1)[1], c.value) for c in src.chunks(10)]
    [('a.bin', b'a.bin'), ('b.bin', b'b.bin')]
"""

from __future__ import annotations

import glob as _glob
import posixpath
from collections.abc import Callable, Iterator
from typing import Any

from mlem_lib.data.base import DataType
from mlem_lib.errors import ObjectNotFoundError, SchemaError
from mlem_lib.formats import Labelled, Partition, Source, _ranges
from mlem_lib.storage import get_fs

#: Turns one file's bytes (and its name, for messages) into one row.
Reader = Callable[[bytes, str], Any]
#: Joins the rows of several files into one batch.
Stacker = Callable[[list[Any]], Any]


def _is_pattern(url: str) -> bool:
    return _glob.has_magic(url)


def expand(url: str) -> tuple[Any, list[tuple[str, str]]]:
    """The filesystem and (path, label) of every file ``url`` names, sorted by path.

    ``url`` is one file, a folder (its files, not its subfolders) or a glob pattern
    (``images/*.png``, ``s3://bucket/clips/**/*.wav``). Labels are the paths as the user
    typed them (``images/a.png``), whatever the filesystem's own spelling.

    Raises:
        ObjectNotFoundError: nothing matches.
    """
    fs, path = get_fs(url)
    if _is_pattern(url):
        found = sorted(p for p in fs.glob(path) if fs.isfile(p))
        typed_root = url[: min(url.find(c) for c in "*?[" if c in url)]
        typed_root = typed_root[: typed_root.rfind("/") + 1]
        _, fs_root = get_fs(typed_root or ".")
        fs_root = fs_root.rstrip("/") + "/"
        pairs = [(p, typed_root + p[len(fs_root):] if p.startswith(fs_root) else p)
                 for p in found]
    elif fs.isdir(path):
        found = sorted(p for p in fs.ls(path, detail=False)
                       if fs.isfile(p) and not posixpath.basename(p).startswith("."))
        prefix = url.rstrip("/") + "/"
        pairs = [(p, prefix + posixpath.basename(p)) for p in found]
    elif fs.isfile(path):
        pairs = [(path, url)]
    else:
        pairs = []
    if not pairs:
        raise ObjectNotFoundError(f"no files match {url}")
    return fs, pairs


class FilesSource(Source):
    """The files of a path, folder or glob, one row each.

    Args:
        url: what to read (see :func:`expand`).
        read: turns a file's bytes into a row; a :class:`SchemaError` it raises is
            reported with the file's name.
        stack: joins the rows of up to ``batch_size`` files into one batch; ``None`` when
            the model takes one value per call (a chunk is then one file's row).
    """

    def __init__(self, url: str, read: Reader, stack: Stacker | None = None) -> None:
        self.url = url
        self.label = url
        self.read = read
        self.stack = stack
        self.fs, self.files = expand(url)
        #: ``url`` names one file (not a folder or a pattern): ``apply`` gives its one answer
        self.one_file = not _is_pattern(url) and self.files == [(self.files[0][0], url)]

    def num_rows(self) -> int | None:
        return len(self.files)

    def _row(self, path: str, label: str) -> Any:
        body = bytes(self.fs.cat_file(path))
        try:
            return self.read(body, label)
        except SchemaError as exc:
            raise SchemaError(f"{label}: {exc}", field=label, expected=exc.expected,
                              got=exc.got) from None

    def chunks(self, batch_size: int, part: Partition | None = None) -> Iterator[Any]:
        start, stop = (part.start, part.stop) if part else (0, len(self.files))
        step = batch_size if self.stack is not None else 1
        for a in range(start, stop, step):
            files = self.files[a:min(stop, a + step)]
            rows = [self._row(path, label) for path, label in files]
            value = self.stack(rows) if self.stack is not None else rows[0]
            yield Labelled(value, [label for _, label in files])

    def partitions(self, n: int) -> list[Partition]:
        return [Partition(index=i, start=a, stop=b, unit="rows")
                for i, (a, b) in enumerate(_ranges(len(self.files), n))]


def unwrap(chunk: Any) -> Any:
    """The value of a :class:`~mlem_lib.formats.Labelled` chunk (other chunks as they are).

    Example:
        >>> unwrap(Labelled(b"x", ["x.bin"])), unwrap(3)
        (b'x', 3)
    """
    return chunk.value if isinstance(chunk, Labelled) else chunk


class WholeFileType(DataType):
    """Base of data types whose value is one whole file (an image, a clip): the model is
    called once per file, and ``apply`` reads any file, folder or glob given to it."""

    def read_file(self, body: bytes, name: str) -> Any:
        """One file's value (``name`` is for messages)."""
        raise NotImplementedError

    def rows(self, value: Any) -> int | None:
        return None

    def from_chunk(self, chunk: Any) -> Any:
        return self.validate_value(unwrap(chunk))

    def open_source(self, url: str) -> Source | None:
        """Any file, folder or glob: one call per file (a data ``.mlem`` is read as data)."""
        if url.endswith(".mlem"):
            return None
        return FilesSource(url, self.read_file)
