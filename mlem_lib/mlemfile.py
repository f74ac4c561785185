"""Reading and writing ``.mlem`` YAML: safe parsing, MLEM layouts, interrupted saves."""

from __future__ import annotations

import copy
import functools
from typing import Any

from mlem_lib.errors import MetadataError, ObjectNotFoundError
from mlem_lib.meta import DataMeta, ModelMeta
from mlem_lib.storage import (
    PENDING_SUFFIX,
    file_matches,
    finish_interrupted_save,
    get_fs,
    resolve_artifact,
    split_meta_path,
)


@functools.lru_cache(maxsize=128)
def _yaml_load_cached(text: bytes | str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)


def _yaml_load(text: bytes | str) -> Any:
    # Parsing YAML costs more than unpickling a small model; the cache is keyed by the
    # file's exact content, so it can never return stale metadata.
    return copy.deepcopy(_yaml_load_cached(text))


def render(meta: ModelMeta | DataMeta) -> bytes:
    """The YAML text of a metadata object, in MLEM's key layout."""
    import yaml

    data = meta.model_dump(mode="json", exclude_none=True, by_alias=True)
    for req in data.get("requirements", []):
        if req.get("type") == "installable":
            del req["type"]
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True).encode()


def parse(text: bytes | str, source: str = "<string>") -> ModelMeta | DataMeta:
    """Parse ``.mlem`` text in any supported layout.

    Raises:
        MetadataError: not YAML, not a mapping, or not a known layout.
    """
    import yaml
    from pydantic import ValidationError

    from mlem_lib.compat.mlem import normalize

    try:
        raw = _yaml_load(text)
    except yaml.YAMLError as exc:
        raise MetadataError(f"{source} is not valid YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(raw, dict):
        raise MetadataError(f"{source} does not contain a mapping")
    data = normalize(raw)
    try:
        if data["object_type"] == "data":
            return DataMeta.model_validate(data)
        return ModelMeta.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MetadataError(f"{source}: invalid metadata at '{where}': {first['msg']}") from exc


def _artifacts_match(fs: Any, meta_path: str, body: bytes) -> bool:
    try:
        meta = parse(body, meta_path + PENDING_SUFFIX)
    except MetadataError:
        return False
    for art in meta.artifacts.values():
        path = resolve_artifact(meta_path, art.uri)
        try:
            if not file_matches(fs, path, size=art.size, digest=art.hash,
                                algorithm=art.hash_algorithm):
                return False
        except FileNotFoundError:
            return False
    return True


def read(url: str) -> tuple[ModelMeta | DataMeta, Any, str]:
    """Read the metadata of the object at ``url``.

    Returns:
        (metadata, filesystem, path of the ``.mlem`` file inside it)

    Raises:
        ObjectNotFoundError: there is no ``.mlem`` file there.
        MetadataError: the file cannot be read as metadata.
    """
    _, meta_url = split_meta_path(url)
    fs, meta_path = get_fs(meta_url)
    if fs.exists(meta_path + PENDING_SUFFIX):
        finish_interrupted_save(fs, meta_path, lambda body: _artifacts_match(fs, meta_path, body))
    try:
        text = fs.cat_file(meta_path)
    except FileNotFoundError:
        raise ObjectNotFoundError(f"no model or data at {url} ({meta_url} does not exist)") \
            from None
    except IsADirectoryError:
        raise ObjectNotFoundError(f"{meta_url} is a directory, not a .mlem file") from None
    return parse(text, meta_url), fs, meta_path
