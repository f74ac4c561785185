"""Reading and writing ``.mlem`` YAML: safe and bounded parsing, MLEM layouts, pending saves."""

from __future__ import annotations

from typing import Any

from mlem_lib.errors import (
    ArtifactIntegrityError,
    MetadataError,
    MetadataTooLargeError,
    ObjectNotFoundError,
    UnsafePathError,
)
from mlem_lib.meta import DataMeta, ModelMeta
from mlem_lib.safeyaml import (  # noqa: F401  (kept importable from here)
    MAX_LINK_HOPS,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_METADATA_NODES,
    _check_expansion,
    _yaml_load,
    _yaml_load_cached,
)
from mlem_lib.storage import (
    PENDING_SUFFIX,
    file_matches,
    get_fs,
    read_pending,
    resolve_artifact,
    split_meta_path,
)


def render(meta: ModelMeta | DataMeta) -> bytes:
    """The YAML text of a metadata object, in MLEM's key layout."""
    from mlem_lib import yamltext  # PyYAML's import alone would cost a cold save 15 ms

    data = meta.model_dump(mode="json", exclude_none=True, by_alias=True)
    for req in data.get("requirements", []):
        if req.get("type") == "installable":
            del req["type"]
    return yamltext.dump(data).encode()


def parse(text: bytes | str, source: str = "<string>") -> ModelMeta | DataMeta:
    """Parse ``.mlem`` text in any supported layout.

    Raises:
        MetadataError: not YAML, not a mapping, or not a known layout.
    """
    import yaml
    from pydantic import ValidationError

    from mlem_lib.compat.mlem import normalize

    if len(text) > MAX_METADATA_BYTES:
        raise MetadataTooLargeError(f"{source} is larger than {MAX_METADATA_BYTES:,} bytes, "
                                    "the limit for a metadata file")
    try:
        raw = _yaml_load(text)
    except yaml.YAMLError as exc:
        raise MetadataError(f"{source} is not valid YAML: {exc}".splitlines()[0]) from None
    except MetadataError as exc:
        raise type(exc)(str(exc).replace("the metadata", source, 1)) from None
    if not isinstance(raw, dict):
        raise MetadataError(f"{source} does not contain a mapping")
    try:
        data = normalize(raw)
    except MetadataError as exc:
        raise MetadataError(f"{source}: {exc}") from None
    try:
        if data["object_type"] == "data":
            return DataMeta.model_validate(data)
        return ModelMeta.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MetadataError(f"{source}: invalid metadata at '{where}': {first['msg']}") from exc


def artifacts_match(fs: Any, meta_path: str, body: bytes) -> bool:
    """Whether the ``.mlem`` text ``body`` describes the artifacts on disk (size, then hash)."""
    try:
        meta = parse(body, meta_path)
        for art in meta.artifacts.values():
            path = resolve_artifact(meta_path, art.uri, fs)
            if not file_matches(fs, path, size=art.size, digest=art.hash,
                                algorithm=art.hash_algorithm):
                return False
    except (MetadataError, UnsafePathError, ArtifactIntegrityError, FileNotFoundError):
        return False
    return True


def _cat_meta(fs: Any, meta_path: str, url: str) -> bytes | None:
    try:
        size = fs.size(meta_path)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ObjectNotFoundError(f"{url} is a directory, not a .mlem file") from None
    if size is not None and size > MAX_METADATA_BYTES:
        raise MetadataTooLargeError(f"{url} is larger than {MAX_METADATA_BYTES:,} bytes, "
                                    "the limit for a metadata file")
    try:
        return bytes(fs.cat_file(meta_path))
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ObjectNotFoundError(f"{url} is a directory, not a .mlem file") from None


def read(url: str, _hops: int = 0) -> tuple[ModelMeta | DataMeta, Any, str]:
    """Read the metadata of the object at ``url``; never writes anything.

    A MLEM link (``object_type: link``) is followed to the object it names.

    When a save was killed between moving its artifact and its metadata, the artifact
    on disk belongs to the pending metadata: that pair is returned (the next save
    finishes the job).

    Returns:
        (metadata, filesystem, path of the ``.mlem`` file inside it)

    Raises:
        ObjectNotFoundError: there is no ``.mlem`` file there.
        MetadataError: the file cannot be read as metadata.
        MetadataTooLargeError: the file is larger than ``MAX_METADATA_BYTES`` or expands
            to more than ``MAX_METADATA_NODES`` values.
    """
    _, meta_url = split_meta_path(url)
    fs, meta_path = get_fs(meta_url)
    text = _cat_meta(fs, meta_path, meta_url)
    if text is not None and _hops < MAX_LINK_HOPS:
        from mlem_lib.compat import links

        link = links.parse(text, meta_url)
        if link is not None:
            return read(links.target(meta_url, link), _hops + 1)
    pending = read_pending(fs, meta_path) if fs.exists(meta_path + PENDING_SUFFIX) else None
    if (pending is not None and pending != text and len(pending) <= MAX_METADATA_BYTES
            and (text is None or not artifacts_match(fs, meta_path, text))
            and artifacts_match(fs, meta_path, pending)):
        text = pending
    if text is None:
        raise ObjectNotFoundError(f"no model or data at {url} ({meta_url} does not exist)")
    return parse(text, meta_url), fs, meta_path
