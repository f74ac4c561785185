"""Names the flows give things: Prefect artifact keys and docker image tags.

Example:
    >>> artifact_key("Iris_RF", "card"), image_tag("Iris", "v0.1.0")
    ('iris-rf-card', 'iris:v0.1.0')
"""

from __future__ import annotations

import os
import re

_ARTIFACT_KEY = re.compile(r"[^a-z0-9-]+")


def model_name(model: str) -> str:
    """The model's name: a reference's name (the registry's parser), or the path's last part.

    Example:
        >>> model_name("nlp/sentiment@v1.0.0"), model_name("models/rf"), model_name("s3://b/lr.mlem")
        ('nlp/sentiment', 'rf', 'lr')
    """
    from mlem_lib.locate import as_reference

    reference = as_reference(model)
    if reference is not None:
        return reference.name
    base = os.path.basename(model.rstrip("/"))
    return base[: -len(".mlem")] if base.endswith(".mlem") else base


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) from free text.

    Example:
        >>> artifact_key("nlp/sentiment", "model-card")
        'nlp-sentiment-model-card'
    """
    return "-".join(_ARTIFACT_KEY.sub("-", p.lower()).strip("-") for p in parts if p)


def image_tag(name: str, version: str | None) -> str:
    """A docker image reference for a model version, e.g. ``iris:v0.1.0``.

    Example:
        >>> image_tag("Iris", "v0.1.0"), image_tag("rf", None), image_tag("nlp/sentiment", "v1")
        ('iris:v0.1.0', 'rf:latest', 'nlp-sentiment:v1')
    """
    repo = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "model"
    tag = re.sub(r"[^A-Za-z0-9._-]+", "-", version or "latest")[:128]
    return f"{repo}:{tag}"
