"""Inferring and checking the pip requirements of a model.

The modules a model really uses are read from its pickle stream (every global
it references), plus what its data schemas need. Module names are mapped to
distributions (``sklearn`` -> ``scikit-learn``) with the installed versions.
Code from local modules (not installed, not the standard library) is recorded
as a ``custom`` requirement carrying its zipped source, so the model can be
loaded where that module does not exist.
"""

from __future__ import annotations

import base64
import functools
import importlib
import importlib.util
import importlib.metadata
import io
import os
import pickletools
import sys
import sysconfig
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from typing import IO, Any

from mlem_lib.errors import RequirementsWarning
from mlem_lib.meta import CustomRequirement, PythonRequirement, UnixRequirement

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING",
               "BINSTRING", "SHORT_BINSTRING"}
_IGNORED = {"__main__", "__builtin__", "builtins", "copyreg", "_codecs", "mlem_lib"}


def pickled_modules(stream: IO[bytes]) -> set[str]:
    """Top-level module names of every global a pickle stream references.

    Example:
        >>> import io, pickle, collections
        >>> sorted(pickled_modules(io.BytesIO(pickle.dumps(collections.OrderedDict()))))
        ['collections']
    """
    modules: set[str] = set()
    strings: list[str] = []
    memo: dict[int, Any] = {}
    last: Any = None
    subimport_pending = False
    for opcode, arg, _pos in pickletools.genops(stream):
        name = opcode.name
        if name in _STRING_OPS:
            value = arg.decode("latin-1") if isinstance(arg, bytes) else arg
            strings.append(value)
            last = value
            if subimport_pending and isinstance(value, str):
                modules.add(value.split(".")[0])
                subimport_pending = False
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = last
            continue
        if name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = last
            continue
        if name in ("GET", "BINGET", "LONG_BINGET"):
            last = memo.get(int(arg))
            if isinstance(last, str):
                strings.append(last)
            continue
        if name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
        elif name == "STACK_GLOBAL" and len(strings) >= 2:
            module, attr = strings[-2], strings[-1]
        else:
            last = None
            continue
        modules.add(module.split(".")[0])
        # cloudpickle pickles module references as subimport("name")
        subimport_pending = attr in ("subimport", "dynamic_subimport")
        last = None
    return {m for m in modules if m and m not in _IGNORED}


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.lru_cache(maxsize=256)
def distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _stdlib_paths() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
    return tuple(os.path.realpath(p) for p in paths)


def is_stdlib(module: str) -> bool:
    return module in sys.stdlib_module_names or module in sys.builtin_module_names


def distribution_of(module: str) -> str | None:
    """The distribution that provides a top-level module, e.g. ``sklearn`` -> ``scikit-learn``."""
    dists = _packages_distributions().get(module)
    if not dists:
        return None
    # several distributions can ship the same top-level name; prefer the one named alike
    for d in dists:
        if d.lower().replace("_", "-") == module.lower().replace("_", "-"):
            return d
    return dists[0]


def _compress(data: bytes) -> str:
    """MLEM's encoding of shipped code: base64 of zlib-compressed bytes."""
    return base64.standard_b64encode(zlib.compress(data)).decode()


def custom_sources(req: CustomRequirement) -> dict[str, bytes]:
    """The files of a shipped local module or package, by relative path.

    A module is its zlib-compressed source; a package is a zlib-compressed zip of its
    ``.py`` files (MLEM's layout, so MLEM-written files load too).
    """
    raw = zlib.decompress(base64.standard_b64decode(req.source64zip))
    if not req.is_package:
        return {req.name.replace(".", "/") + ".py": raw}
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _local_source(module: str) -> CustomRequirement | None:
    mod = sys.modules.get(module)
    if mod is None:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return None
    path = getattr(mod, "__file__", None)
    if not path:
        return None
    path = os.path.realpath(path)
    if path.startswith(_stdlib_paths()) or "site-packages" in path or "dist-packages" in path:
        return None
    is_package = os.path.basename(path) == "__init__.py"
    if not is_package:
        with open(path, "rb") as f:
            return CustomRequirement(name=module, is_package=False, source64zip=_compress(f.read()))
    buf = io.BytesIO()
    root = os.path.dirname(path)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for fn in sorted(filenames):
                if fn.endswith(".py"):
                    full = os.path.join(dirpath, fn)
                    zf.write(full, os.path.relpath(full, os.path.dirname(root)))
    return CustomRequirement(name=module, is_package=True, source64zip=_compress(buf.getvalue()))


def resolve(modules: Iterable[str]) -> list[PythonRequirement | CustomRequirement]:
    """Turn top-level module names into pinned requirements (stdlib dropped).

    Example:
        >>> [r.package_name for r in resolve(["yaml", "json"])]
        ['PyYAML']
    """
    out: list[PythonRequirement | CustomRequirement] = []
    seen: set[str] = set()
    for module in sorted(set(modules)):
        if module in seen or module in _IGNORED or is_stdlib(module):
            continue
        seen.add(module)
        dist = distribution_of(module)
        if dist is not None:
            out.append(PythonRequirement(module=module, version=distribution_version(dist),
                                         package_name=dist if dist != module else None))
            continue
        custom = _local_source(module)
        if custom is not None:
            out.append(custom)
    # a custom module's own imports are requirements too
    for req in list(out):
        if isinstance(req, CustomRequirement):
            for extra in _imports_of(req):
                if extra not in seen and not is_stdlib(extra) and extra not in _IGNORED:
                    seen.add(extra)
                    dist = distribution_of(extra)
                    if dist is not None:
                        out.append(PythonRequirement(
                            module=extra, version=distribution_version(dist),
                            package_name=dist if dist != extra else None))
    return out


def _imports_of(req: CustomRequirement) -> set[str]:
    import ast

    names: set[str] = set()
    for source in custom_sources(req).values():
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    names.discard(req.name)
    return names


def unix_requirements(modules: Iterable[str]) -> list[UnixRequirement]:
    """System packages that some frameworks need at run time."""
    needs_gomp = {"xgboost", "lightgbm"} & set(modules)
    return [UnixRequirement(package_name="libgomp1")] if needs_gomp else []


def install_custom(reqs: Iterable[CustomRequirement], target: str) -> None:
    """Unpack shipped local modules into ``target`` and put it on ``sys.path``.

    Only modules that cannot be imported already are unpacked.
    """
    added = False
    for req in reqs:
        if req.name in sys.modules:
            continue
        try:
            spec = importlib.util.find_spec(req.name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            continue
        for member, body in custom_sources(req).items():
            if member.startswith(("/", "\\")) or ".." in member.split("/"):
                continue
            dest = os.path.join(target, *member.split("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(body)
        added = True
    if added and target not in sys.path:
        sys.path.append(target)


def check_installed(reqs: Iterable[PythonRequirement]) -> list[str]:
    """Warn about recorded packages whose installed major.minor differs; return the messages."""
    problems = []
    for req in reqs:
        if not req.version:
            continue
        installed = distribution_version(req.distribution)
        if installed is None:
            problems.append(f"{req.distribution}=={req.version} is not installed")
        elif installed.split(".")[:2] != req.version.split(".")[:2]:
            problems.append(f"{req.distribution} {installed} is installed, the model was saved "
                            f"with {req.version}")
    for message in problems:
        warnings.warn(message, RequirementsWarning, stacklevel=3)
    return problems


def pip_lines(reqs: Iterable[Any]) -> list[str]:
    """``name==version`` lines for pip, from installable requirements only."""
    return [r.pip_line() for r in reqs if isinstance(r, PythonRequirement)]
