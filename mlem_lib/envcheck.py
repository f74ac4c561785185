"""``mlem checkenv MODEL``: do the installed packages match what the model recorded?

Every pinned Python requirement is compared with the installed distribution: a
missing one or another version is a mismatch (``load`` only warns about a different
major.minor; ``checkenv`` is strict, for CI and images). Shipped local code always
matches (it travels in the ``.mlem`` file); system (apt) packages are listed as not
checked.

Example:
    >>> from mlem_lib.meta import PythonRequirement
    >>> [m.problem for m in compare([PythonRequirement(module="pydantic", version="0.0.1"),
    ...                              PythonRequirement(module="no_such_dist_xyz")])]
    ['version', 'missing']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel

from mlem_lib.meta import ModelMeta, PythonRequirement

__all__ = ["EnvironmentReport", "Mismatch", "check_environment", "compare"]


class Mismatch(BaseModel):
    """A recorded requirement the environment does not satisfy."""

    distribution: str
    required: str | None
    installed: str | None
    problem: Literal["missing", "version"]

    def __str__(self) -> str:
        if self.problem == "missing":
            return f"{self.distribution}{'==' + self.required if self.required else ''} " \
                   "is not installed"
        return f"{self.distribution} {self.installed} is installed, the model recorded " \
               f"{self.required}"


class EnvironmentReport(BaseModel):
    """What ``checkenv`` found."""

    path: str
    checked: int
    mismatches: list[Mismatch]
    unchecked: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _same(installed: str, required: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(installed) == Version(required)
    except InvalidVersion:
        return installed == required


def compare(requirements: Iterable[PythonRequirement]) -> list[Mismatch]:
    """The requirements the installed distributions do not satisfy."""
    from mlem_lib.requirements import distribution_version

    out = []
    for req in requirements:
        installed = distribution_version(req.distribution)
        if installed is None:
            out.append(Mismatch(distribution=req.distribution, required=req.version,
                                installed=None, problem="missing"))
        elif req.version and not _same(installed, req.version):
            out.append(Mismatch(distribution=req.distribution, required=req.version,
                                installed=installed, problem="version"))
    return out


def check_environment(path: str, repo: str | None = None) -> EnvironmentReport:
    """Compare the requirements of the model (or data object) at ``path`` with this
    environment.

    Raises:
        ObjectNotFoundError: nothing saved there.
    """
    from mlem_lib.locate import read_meta

    meta = read_meta(path, repo)
    reqs = [r for r in meta.requirements if isinstance(r, PythonRequirement)]
    unchecked = [f"{r.package_name} (apt)" for r in meta.unix_requirements()] \
        if isinstance(meta, ModelMeta) else []
    return EnvironmentReport(path=path, checked=len(reqs), mismatches=compare(reqs),
                             unchecked=unchecked)
