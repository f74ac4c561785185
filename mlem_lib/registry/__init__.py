"""A git-native model registry: versions and stages are GTO tags, binaries live in DVC.

Example:
    >>> from mlem_lib.registry import register, assign  # doctest: +SKIP
    >>> register("models/rf", bump="minor").tag  # doctest: +SKIP
    'rf@v0.1.0'
    >>> assign("rf", "prod").tag  # doctest: +SKIP
    'rf#prod#1'
"""

from __future__ import annotations

from mlem_lib.locate import checkout as checkout_reference
from mlem_lib.locate import parse_reference, resolve_version
from mlem_lib.registry.listing import history, list_models
from mlem_lib.registry.models import (
    ModelSummary,
    RegisteredVersion,
    RegistryEvent,
    StageAssignment,
)
from mlem_lib.registry.register import register
from mlem_lib.registry.stages import assign, find_latest_version, find_stage_version

__all__ = ["ModelSummary", "RegisteredVersion", "RegistryEvent", "StageAssignment", "assign",
           "checkout_reference", "find_latest_version", "find_stage_version", "history",
           "list_models", "parse_reference", "register", "resolve_version"]
