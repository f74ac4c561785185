"""Plain data returned by the registry functions (what Prefect flows pass on)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class RegisteredVersion(BaseModel):
    """A model version: the git tag ``name@vX.Y.Z`` on the commit holding it.

    Example:
        >>> RegisteredVersion(name="rf", version="v1.0.0", tag="rf@v1.0.0",
        ...                   commit="0" * 40, path="models/rf").tag
        'rf@v1.0.0'
    """

    name: str
    version: str
    tag: str
    commit: str
    path: str | None = None


class StageAssignment(BaseModel):
    """A stage given to a version: the git tag ``name#stage#N``."""

    name: str
    version: str
    stage: str
    tag: str
    commit: str


class ModelSummary(BaseModel):
    """One row of ``mlem registry show``: the latest version and each stage's version."""

    name: str
    latest: str | None = None
    stages: dict[str, str | None] = {}
    path: str | None = None
    description: str | None = None
    labels: list[str] = []


class RegistryEvent(BaseModel):
    """A registration, assignment, deregistration... as ``gto history`` lists them."""

    timestamp: datetime
    name: str
    event: str
    version: str | None = None
    stage: str | None = None
    commit: str
    tag: str | None = None
    author: str | None = None
    author_email: str | None = None
    message: str | None = None
