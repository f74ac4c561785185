"""Reading model references: a path, ``name@vX.Y.Z``, ``name@latest`` or ``name#stage``.

Example:
    >>> split_reference("iris#prod"), split_reference("iris@v0.1.0"), split_reference("models/rf")
    (('iris', '#', 'prod'), ('iris', '@', 'v0.1.0'), None)
"""

from __future__ import annotations

import os
import re

_ARTIFACT_KEY = re.compile(r"[^a-z0-9-]+")


def split_reference(model: str) -> tuple[str, str, str] | None:
    """``(name, "@" or "#", version or stage)`` for a registry reference, else ``None``."""
    from mlem_lib.locate import is_registry_reference

    if not is_registry_reference(model):
        return None
    for sep in ("#", "@"):
        if sep in model:
            name, spec = model.split(sep, 1)
            return name, sep, spec
    return None


def model_name(model: str) -> str:
    """The model's name: the reference's name or the path's last part.

    Example:
        >>> model_name("iris@v1.0.0"), model_name("models/rf"), model_name("s3://b/m/lr.mlem")
        ('iris', 'rf', 'lr')
    """
    ref = split_reference(model)
    if ref:
        return ref[0]
    base = os.path.basename(model.rstrip("/"))
    return base[: -len(".mlem")] if base.endswith(".mlem") else base


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) from free text.

    Example:
        >>> artifact_key("Iris_RF", "card")
        'iris-rf-card'
    """
    return "-".join(_ARTIFACT_KEY.sub("-", p.lower()).strip("-") for p in parts if p)


def image_tag(name: str, version: str | None) -> str:
    """A docker image reference for a model version, e.g. ``iris:v0.1.0``.

    Example:
        >>> image_tag("Iris", "v0.1.0"), image_tag("rf", None)
        ('iris:v0.1.0', 'rf:latest')
    """
    repo = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "model"
    tag = re.sub(r"[^A-Za-z0-9._-]+", "-", version or "latest")[:128]
    return f"{repo}:{tag}"
