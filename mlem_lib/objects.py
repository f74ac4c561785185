"""Saving objects with their metadata and loading them back safely."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from mlem_lib import __version__
from mlem_lib.errors import (
    ArtifactIntegrityError,
    MetadataError,
    MissingExtraError,
    ObjectNotFoundError,
    StorageError,
)
from mlem_lib.meta import Artifact, DataMeta, ModelMeta, ModelType, SavedSample, main_artifact
from mlem_lib.storage import (
    file_matches,
    get_fs,
    read_verified,
    resolve_artifact,
    split_meta_path,
    write_object,
)

HASH_ALGORITHM = "sha256"
#: rows of ``sample_data`` kept in a model's ``.mlem`` file (exports check answers on them)
SAMPLE_ROWS = 1000
#: ...and no more rows than fit in about this many bytes of JSON
SAMPLE_BYTES = 64 * 1024


def _is_model(obj: Any) -> bool:
    from mlem_lib.data.base import is_data

    return not is_data(obj)


def save(obj: Any, path: str, sample_data: Any = None, description: str | None = None,
         labels: list[str] | None = None, **declared: Any) -> ModelMeta | DataMeta:
    """Save a model (or a data object) and its inferred metadata; see :func:`mlem_lib.api.save`.

    ``declared`` holds what the user declares for a model (``input_schema``,
    ``extra_requirements``, ``code_paths``, ``methods``, ``keep_example``, ``sample_rows``).
    """
    from mlem_lib.models.base import model_from_file

    obj = model_from_file(obj)  # save("model.onnx", ...) saves the model in the file
    if _is_model(obj):
        return save_model(obj, path, sample_data, description, labels, **declared)
    given = [k for k, v in declared.items()
             if v is not None and k not in ("keep_example", "sample_rows")]
    if given:
        from mlem_lib.errors import UnsupportedObjectError

        raise UnsupportedObjectError(f"{', '.join(given)}: only models take these options; "
                                     f"{type(obj).__name__} is saved as data")
    return save_data(obj, path, description, labels)


def keep_sample(sample: Any, rows: int = SAMPLE_ROWS,
                max_bytes: int = SAMPLE_BYTES) -> SavedSample | None:
    """The first rows of a sample as they are kept in the ``.mlem`` file, or None when they
    cannot be written and read back (the sample is an extra: it never fails a save).

    Example:
        >>> keep_sample([1.5, 2.5, 3.5], rows=2).values
        '[1.5,2.5]'
    """
    import json

    from mlem_lib.data.base import infer_data_type
    from mlem_lib.inference import head

    if sample is None or rows <= 0:
        return None
    try:
        value = head(sample, rows)
        data_type = infer_data_type(value).batch_free()
        n = data_type.rows(value)
        text = json.dumps(data_type.to_json(value), separators=(",", ":"), allow_nan=False)
        while len(text) > max_bytes and n is not None and n > 1:
            n = max(1, n * max_bytes // len(text) * 9 // 10)
            value = head(sample, n)
            text = json.dumps(data_type.to_json(value), separators=(",", ":"),
                              allow_nan=False)
        if len(text) > max_bytes:
            return None
        kept = SavedSample(rows=n, data_type=data_type, values=text)
        kept.read()
    except Exception:
        return None
    return kept


def save_model(model: Any, path: str, sample_data: Any = None, description: str | None = None,
               labels: list[str] | None = None, *, input_schema: Any = None,
               extra_requirements: Any = None, code_paths: Any = None,
               methods: list[str] | None = None, keep_example: bool = True,
               sample_rows: int = SAMPLE_ROWS, model_type: ModelType | None = None,
               extra_fields: dict[str, Any] | None = None) -> ModelMeta:
    """Save a model; ``model_type`` replaces the inferred one (an export keeps the native
    model's methods) and ``extra_fields`` adds top-level fields to the ``.mlem`` file.
    ``keep_example=False`` keeps no sample rows either."""
    from mlem_lib import declared, mlemfile, requirements
    from mlem_lib.inference import infer_model_type

    extra = declared.requirement_lines(extra_requirements) if extra_requirements else []
    shipped = declared.code_requirements(code_paths) if code_paths else []
    handler, inferred = infer_model_type(model, sample_data, input_schema=input_schema,
                                         methods=methods, keep_example=keep_example)
    if model_type is None:
        model_type = inferred
    sample = keep_sample(sample_data, sample_rows if keep_example else 0)
    prepared = handler.prepare(model, sample_data if sample_data is not None
                               else handler.default_input(model))
    if prepared is not model:  # a portable form (TorchScript) is written: its io says so
        model = prepared
        model_type.io = handler.model_io(model)
    _obj_path, meta_url = split_meta_path(path)
    fs, meta_path = get_fs(meta_url)
    art_path = meta_path[: -len(".mlem")]
    uri = posixpath.basename(art_path)
    holder: dict[str, Any] = {}
    tmp_names: dict[str, str] = {}

    with _written_files(handler, model, model_type, fs, art_path) as files:
        if files is None:  # one file: the handler writes it
            writers = {art_path: lambda f: handler.dump(model, f)}
            names = {art_path: ("data", uri)}
        else:  # a folder of files, each its own artifact
            writers = {f"{art_path}/{rel}": _copier(local) for rel, local in files.items()}
            names = {f"{art_path}/{rel}": (rel, f"{uri}/{rel}") for rel in files}

        def open_artifact() -> IO[bytes]:
            return fs.open(tmp_names[art_path], "rb")  # type: ignore[no-any-return]

        def render(digests: dict[str, tuple[str, int]]) -> bytes:
            modules = handler.artifact_modules(model, model_type.io,
                                               open_artifact if files is None else None)
            for sig in model_type.methods.values():
                for arg in sig.args:
                    modules.update(arg.type_.requirement_modules())
                modules.update(sig.returns.requirement_modules())
            reqs: list[Any] = list(requirements.resolve(modules))
            reqs = declared.merge_code(declared.merge_requirements(reqs, extra), shipped)
            reqs += requirements.unix_requirements(modules)
            artifacts = {name: Artifact(uri=art_uri, size=digests[final][1],
                                        hash=digests[final][0], hash_algorithm=HASH_ALGORITHM)
                         for final, (name, art_uri) in names.items()}
            meta = ModelMeta(
                model_type=model_type, requirements=reqs, artifacts=artifacts,
                description=description, labels=labels or [], mlem_lib_version=__version__,
                **{"sample": sample, **(extra_fields or {})})
            holder["meta"] = meta
            return mlemfile.render(meta)

        write_object(fs, meta_path, writers, render, HASH_ALGORITHM,
                     on_temp=tmp_names.__setitem__,
                     describes_artifacts=lambda body: mlemfile.artifacts_match(fs, meta_path,
                                                                               body))
    meta: ModelMeta = holder["meta"]
    return meta


@contextmanager
def _written_files(handler: Any, model: Any, model_type: Any, fs: Any,
                   art_path: str) -> Iterator[dict[str, str] | None]:
    """For folder models: the files the handler wrote into a temporary folder (relative path
    -> local path), with their folders made under ``art_path``; ``None`` for one file."""
    import os
    import tempfile

    if not handler.is_folder(model_type.io):
        yield None
        return
    if fs.isfile(art_path):
        raise StorageError(f"{art_path} is a file (a model saved as one file); this model is "
                           "saved as a folder of files there: remove it or save elsewhere")
    with tempfile.TemporaryDirectory(prefix="mlem-save-") as tmp:
        handler.dump_dir(model, tmp)
        files: dict[str, str] = {}
        for root, _dirs, names in os.walk(tmp):
            for name in names:
                local = os.path.join(root, name)
                files[os.path.relpath(local, tmp).replace(os.sep, "/")] = local
        if not files:
            raise StorageError(f"the {model_type.type} model wrote no files")
        for folder in sorted({posixpath.dirname(f"{art_path}/{rel}") for rel in files}):
            fs.makedirs(folder, exist_ok=True)
        yield dict(sorted(files.items()))


def _copier(local: str) -> Callable[[IO[bytes]], None]:
    def copy(f: IO[bytes]) -> None:
        import shutil

        with open(local, "rb") as src:
            shutil.copyfileobj(src, f, 4 * 1024 * 1024)

    return copy


def save_data(obj: Any, path: str, description: str | None = None,
              labels: list[str] | None = None) -> DataMeta:
    from mlem_lib import mlemfile, requirements
    from mlem_lib.data import files
    from mlem_lib.data.base import infer_data_type

    data_type = infer_data_type(obj)
    fmt = files.format_for(obj)
    _, meta_url = split_meta_path(path)
    fs, meta_path = get_fs(meta_url)
    art_path = meta_path[: -len(".mlem")]
    holder: dict[str, Any] = {}

    def render(digests: dict[str, tuple[str, int]]) -> bytes:
        digest, size = digests[art_path]
        modules = set(data_type.requirement_modules())
        if fmt == "parquet":
            modules.add("pyarrow")
        meta = DataMeta(data_type=data_type, format=fmt,
                        requirements=list(requirements.resolve(modules)),
                        artifacts={"data": Artifact(uri=posixpath.basename(art_path), size=size,
                                                    hash=digest, hash_algorithm=HASH_ALGORITHM)},
                        description=description, labels=labels or [],
                        mlem_lib_version=__version__)
        holder["meta"] = meta
        return mlemfile.render(meta)

    write_object(fs, meta_path, {art_path: lambda f: files.write(obj, data_type, fmt, f)},
                 render, HASH_ALGORITHM,
                 describes_artifacts=lambda body: mlemfile.artifacts_match(fs, meta_path, body))
    meta: DataMeta = holder["meta"]
    return meta


def read_artifact_file(fs: Any, meta_path: str, art: Artifact) -> bytes:
    """The bytes of one artifact, after checking its path, size and hash."""
    return read_verified(fs, resolve_artifact(meta_path, art.uri, fs), size=art.size,
                         digest=art.hash, algorithm=art.hash_algorithm)


def verify_artifacts(meta: ModelMeta | DataMeta, fs: Any, meta_path: str) -> None:
    """Check every artifact's path, size and hash, streaming: nothing is kept or unpickled.

    Raises:
        ObjectNotFoundError: an artifact is missing.
        ArtifactIntegrityError: an artifact's size or hash differs from the metadata.
        UnsafePathError: an artifact's URI leaves the model's folder.
    """
    if not meta.artifacts:
        raise MetadataError(f"{meta_path} lists no artifacts")
    for art in meta.artifacts.values():
        path = resolve_artifact(meta_path, art.uri, fs)
        try:
            ok = file_matches(fs, path, size=art.size, digest=art.hash,
                              algorithm=art.hash_algorithm)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"artifact {path} is missing") from None
        if not ok:
            raise ArtifactIntegrityError(f"artifact {path} does not match its metadata (size "
                                         "or hash differ): it was modified or truncated")


def read_artifact(meta: ModelMeta | DataMeta, fs: Any, meta_path: str) -> bytes:
    """The verified bytes of the object's main artifact."""
    art = main_artifact(meta.artifacts)
    if art is None:
        raise MetadataError(f"{meta_path} lists no artifacts")
    return read_artifact_file(fs, meta_path, art)


def _load_data(meta: DataMeta, fs: Any, meta_path: str) -> Any:
    from mlem_lib.compat.mlem_data import COMPOSITE_READERS, read_composite
    from mlem_lib.data import files

    reader = getattr(meta, "reader", None)
    if isinstance(reader, dict) and reader.get("type") in COMPOSITE_READERS:
        def read_one(key: str) -> bytes:
            art = meta.artifacts.get(key)
            if art is None:
                raise MetadataError(f"{meta_path} has no artifact {key!r}")
            return read_artifact_file(fs, meta_path, art)

        return meta.data_type.validate_value(read_composite(reader, read_one))
    return files.read(read_artifact(meta, fs, meta_path), meta.data_type, meta.format)


def load_object(meta: ModelMeta | DataMeta, fs: Any, meta_path: str,
                check_requirements: bool = True, device: str | None = None) -> Any:
    """Verify the artifacts and rebuild the object they hold.

    Args:
        device: where a deep-learning model is loaded (``cpu``, ``cuda:0``...); ``None``
            for the handler's default (``$MLEM_DEVICE``, else the CPU).
    """
    from mlem_lib import requirements
    from mlem_lib.models.base import handler_for_type

    if isinstance(meta, DataMeta):
        return _load_data(meta, fs, meta_path)
    handler = handler_for_type(meta.model_type.type)
    folder = handler.is_folder(meta.model_type.io)
    body = None if folder else read_artifact(meta, fs, meta_path)
    if meta.custom_requirements():
        requirements.install_custom(meta.custom_requirements())
    if check_requirements:
        requirements.check_installed(meta.python_requirements())
    try:
        if body is not None:
            return handler.load_file(body, meta.model_type.io, device)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="mlem-load-") as tmp:
            fetch_folder(meta, fs, meta_path, tmp)
            return handler.load_dir(tmp, meta.model_type.io, device)
    except ModuleNotFoundError as exc:  # the pickle names a framework that is not installed
        from mlem_lib.extras import extra_of

        extra = extra_of(exc.name or "")
        if extra is None:
            raise
        raise MissingExtraError(f"loading {meta_path}", extra, exc.name) from exc


def fetch_folder(meta: ModelMeta, fs: Any, meta_path: str, target: str) -> None:
    """Copy a folder model's files into ``target``, checking each one's size and hash.

    Files keep their paths inside the model's folder (``clf/config.json`` becomes
    ``target/config.json``); nothing is read from the original folder afterwards, so a
    file swapped after the check is never loaded.

    Raises:
        ObjectNotFoundError: a file is missing.
        ArtifactIntegrityError: a file's size or hash differs from the metadata.
        UnsafePathError: a file's URI leaves the model's folder.
    """
    import os

    from mlem_lib.storage import CHUNK, hasher

    uris = {name: art.uri.replace("\\", "/") for name, art in meta.artifacts.items()}
    if not uris:
        raise MetadataError(f"{meta_path} lists no artifacts")
    root = posixpath.commonpath(list(uris.values())) if len(uris) > 1 else \
        posixpath.dirname(next(iter(uris.values())))
    for name, art in meta.artifacts.items():
        src = resolve_artifact(meta_path, art.uri, fs)
        rel = posixpath.relpath(uris[name], root) if root else uris[name]
        dst = os.path.join(target, *rel.split("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        h, size = hasher(art.hash_algorithm), 0
        try:
            with fs.open(src, "rb") as f, open(dst, "wb") as out:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"artifact {src} is missing") from None
        if size != art.size or h.hexdigest() != art.hash:
            raise ArtifactIntegrityError(f"artifact {src} does not match its metadata (size "
                                         "or hash differ): it was modified or truncated")
