"""What a user declares at save on top of what is inferred: extra requirements and code.

``save(..., extra_requirements=["shap==0.46.0", "scipy>=1.10"])`` adds packages the
model needs but its pickle does not show (a plugin loaded by name, an optional backend);
``save(..., code_paths=["src/features.py", "src/mypkg"])`` ships local modules and
packages inside the ``.mlem`` file, like the local code found automatically. Both follow
MLflow's ``extra_pip_requirements`` and ``code_paths``.

Example:
    >>> [r.pip_line() for r in requirement_lines(["shap==0.46.0", "scipy>=1.10"])]
    ['shap==0.46.0', 'scipy>=1.10']
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from mlem_lib.errors import MetadataError
from mlem_lib.meta import CustomRequirement, PythonRequirement

_LINE = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?"
                   r"\s*(?P<spec>(?:[<>=!~]=?|===)\s*[^;\s,]+(?:\s*,\s*(?:[<>=!~]=?|===)"
                   r"\s*[^;\s,]+)*)?\s*(?:;\s*(?P<marker>.+))?$")


def requirement_line(line: str) -> PythonRequirement:
    """A requirement from one PEP 508 line (``name``, ``name==1.0``, ``name[extra]>=2``).

    Raises:
        MetadataError: the line is not a requirement (the message quotes it).

    Example:
        >>> requirement_line("scikit-learn==1.5.0").version
        '1.5.0'
        >>> requirement_line("pip install x")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mlem_lib.errors.MetadataError: extra_requirements: 'pip install x' is not a ...
    """
    match = _LINE.match(line) if isinstance(line, str) else None
    if match is None:
        raise MetadataError(f"extra_requirements: {line!r} is not a requirement like "
                            "'name==1.2.3' or 'name>=1.2'")
    name, spec = match.group("name"), (match.group("spec") or "").replace(" ", "")
    exact = re.fullmatch(r"==([^,*]+)", spec)
    module = name.lower().replace("-", "_").replace(".", "_")
    simple = not match.group("extras") and not match.group("marker")
    if simple and exact:
        return PythonRequirement(module=module, package_name=name, version=exact.group(1))
    if simple and not spec:
        return PythonRequirement(module=module, package_name=name)
    return PythonRequirement(module=module, package_name=name, spec=line.strip(),
                             version=exact.group(1) if exact else None)


def requirement_lines(lines: Iterable[str] | str) -> list[PythonRequirement]:
    """Requirements from lines (a single string may hold several, one per line)."""
    if isinstance(lines, str):
        lines = [ln for ln in lines.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [requirement_line(line) for line in lines]


def merge_requirements(inferred: list[Any], extra: list[PythonRequirement]) -> list[Any]:
    """The inferred requirements with the declared ones added; a declared line replaces the
    inferred pin of the same distribution (the user knows better).

    Example:
        >>> inferred = [PythonRequirement(module="numpy", version="2.4.6")]
        >>> [r.pip_line() for r in merge_requirements(inferred, requirement_lines(["numpy>=2"]))]
        ['numpy>=2']
    """
    def key(req: PythonRequirement) -> str:
        return re.sub(r"[-_.]+", "-", req.distribution).lower()

    declared = {key(r): r for r in extra}
    out = []
    for req in inferred:
        if isinstance(req, PythonRequirement) and key(req) in declared:
            out.append(declared.pop(key(req)))
        else:
            out.append(req)
    return out + list(declared.values())


def code_requirements(paths: Iterable[str | os.PathLike[str]]) -> list[CustomRequirement]:
    """Local modules (``helpers.py``) and packages (folders with ``__init__.py``) to ship.

    Every ``.py`` file of a package is shipped, subpackages included.

    Raises:
        MetadataError: a path is missing, or is neither a ``.py`` file nor a package.
    """
    from mlem_lib.requirements import _custom_requirement

    out: list[CustomRequirement] = []
    for raw in paths:
        path = os.path.abspath(os.fspath(raw))
        name = os.path.basename(path.rstrip(os.sep))
        if os.path.isfile(path) and path.endswith(".py"):
            top = name[:-3]
            with open(path, "rb") as f:
                files = {f"{top}.py": f.read()}
        elif os.path.isdir(path) and os.path.isfile(os.path.join(path, "__init__.py")):
            top = name
            files = {}
            for folder, dirs, filenames in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
                for filename in sorted(filenames):
                    if filename.endswith(".py"):
                        full = os.path.join(folder, filename)
                        rel = os.path.relpath(full, os.path.dirname(path)).replace(os.sep, "/")
                        with open(full, "rb") as f:
                            files[rel] = f.read()
        else:
            raise MetadataError(f"code_paths: {os.fspath(raw)} is not a .py file or a package "
                                "folder (a folder with __init__.py)")
        if not top.isidentifier():
            raise MetadataError(f"code_paths: {os.fspath(raw)} cannot be imported as "
                                f"{top!r}: not a Python module name")
        out.append(_custom_requirement(top, files))
    return out


def merge_code(inferred: list[Any], shipped: list[CustomRequirement]) -> list[Any]:
    """The inferred requirements with declared code: a declared module or package replaces
    the one found automatically under the same top-level name, and the installed
    distribution of that name (an editable install of your own package) is dropped: the
    code travels with the model instead of being looked up on an index.

    Example:
        >>> inferred = [PythonRequirement(module="mypkg", version="0.1.0")]
        >>> shipped = [CustomRequirement(name="mypkg", source64zip="")]
        >>> [type(r).__name__ for r in merge_code(inferred, shipped)]
        ['CustomRequirement']
    """
    names = {r.name for r in shipped}
    kept = [r for r in inferred
            if not (isinstance(r, CustomRequirement) and r.name in names)
            and not (isinstance(r, PythonRequirement) and r.module in names)]
    return kept + shipped
