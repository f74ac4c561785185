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
import importlib
import importlib.abc
import importlib.util
import io
import os
import pickletools
import sys
import sysconfig
import types
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from typing import IO, Any

from mlem_lib import distributions
from mlem_lib.errors import RequirementsWarning
from mlem_lib.meta import CustomRequirement, PythonRequirement, UnixRequirement

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING",
               "BINSTRING", "SHORT_BINSTRING"}
_IGNORED = {"__main__", "__builtin__", "builtins", "copyreg", "_codecs", "mlem_lib"}
_SCAN_IN_MEMORY = 64 * 1024 * 1024  # smaller artifacts are scanned from memory: 2x faster


def pickled_modules(stream: IO[bytes]) -> set[str]:
    """Full module names of every global a pickle stream references.

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
    source: IO[bytes] = stream
    head = stream.read(_SCAN_IN_MEMORY)
    if len(head) < _SCAN_IN_MEMORY:
        source = io.BytesIO(head)
    else:
        stream.seek(0)
    for opcode, arg, _pos in pickletools.genops(source):
        name = opcode.name
        if name in _STRING_OPS:
            value = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
            strings.append(value)
            last = value
            if subimport_pending and isinstance(value, str):
                modules.add(value)
                subimport_pending = False
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = last
            continue
        if name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg or 0)] = last
            continue
        if name in ("GET", "BINGET", "LONG_BINGET"):
            last = memo.get(int(arg or 0))
            if isinstance(last, str):
                strings.append(last)
                if subimport_pending:
                    # the module's name was written before (a key of the function's
                    # globals, say) and comes back from the memo
                    modules.add(last)
                    subimport_pending = False
            continue
        if name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
        elif name == "STACK_GLOBAL" and len(strings) >= 2:
            module, attr = strings[-2], strings[-1]
        else:
            last = None
            continue
        modules.add(module)
        # cloudpickle pickles module references as subimport("name")
        subimport_pending = attr in ("subimport", "dynamic_subimport")
        last = None
    return {m for m in modules if m and m.split(".")[0] not in _IGNORED}


def distribution_version(name: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    return distributions.version_of(name)


def _stdlib_paths() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
    return tuple(os.path.realpath(p) for p in paths)


def is_stdlib(module: str) -> bool:
    return module in sys.stdlib_module_names or module in sys.builtin_module_names


def distribution_of(module: str) -> str | None:
    """The distribution that provides a top-level module, e.g. ``sklearn`` -> ``scikit-learn``."""
    return distributions.distribution_of(module)


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


def _module_file(name: str) -> str | None:
    """The source file of a module that is neither installed nor in the standard library."""
    mod = sys.modules.get(name)
    if mod is None:
        try:
            mod = importlib.import_module(name)
        except Exception:  # a broken local module must not break saving
            return None
    path = getattr(mod, "__file__", None)
    if not path or not path.endswith(".py"):
        return None
    path = os.path.realpath(path)
    if path.startswith(_stdlib_paths()) or "site-packages" in path or "dist-packages" in path:
        return None
    return path


def code_imports(obj: Any, modules: Iterable[str]) -> set[str]:
    """Modules imported inside the bodies of functions that are pickled by value.

    A function defined in a training script travels as its code. ``import helpers`` at
    the top of the script shows in the pickle as a module reference, but an ``import``
    statement inside the function (or a method of a class defined there) only shows in
    the code's bytecode. Only run when ``modules`` (what the pickle references) says
    that cloudpickle wrote code by value; arrays are passed out of band, not copied.

    Example:
        >>> def f(x):
        ...     import fractions
        ...     return fractions.Fraction(x)
        >>> import cloudpickle, io
        >>> sorted(code_imports(f, pickled_modules(io.BytesIO(cloudpickle.dumps(f)))))
        ['fractions']
    """
    if not any(m.split(".")[0] == "cloudpickle" for m in modules):
        return set()
    import cloudpickle

    found: set[str] = set()

    class _CodeTracer(cloudpickle.Pickler):  # type: ignore[misc]
        def reducer_override(self, value: Any) -> Any:
            if isinstance(value, types.CodeType):  # nested code objects come here too
                found.update(_imported_names(value))
            return super().reducer_override(value)

    try:
        _CodeTracer(_NullSink(), protocol=5, buffer_callback=lambda _buf: None).dump(obj)
    except Exception as exc:  # it pickled once already; never fail a save over this
        warnings.warn(f"could not look for imports inside the model's functions: {exc}",
                      RequirementsWarning, stacklevel=2)
    return found


class _NullSink:
    def write(self, data: Any) -> int:
        return len(memoryview(data))


def _imported_names(code: types.CodeType) -> set[str]:
    """Absolute module names of the ``import`` statements in one code object."""
    import dis

    names = set()
    consts: list[Any] = [None, None]  # IMPORT_NAME follows LOAD_CONST level, fromlist
    for ins in dis.get_instructions(code):
        if ins.opname == "LOAD_CONST":
            consts = [consts[-1], ins.argval]
        elif ins.opname == "IMPORT_NAME":
            if consts[0] == 0 and isinstance(ins.argval, str):
                names.add(ins.argval)
            consts = [None, None]
    return names


def _local_imports(source: bytes, module: str, is_package: bool) -> set[str]:
    """Full names of the modules a source file imports (relative imports resolved)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join([*parts, base] if base else parts)
            if base:
                names.add(base)
                names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _collect_local(modules: set[str]) -> tuple[dict[str, dict[str, bytes]], set[str]]:
    """Local source files reachable from ``modules``, grouped by top-level name.

    Returns ({top-level name: {relative path: source}}, imported non-local top-level names).
    """
    files: dict[str, dict[str, bytes]] = {}
    external: set[str] = set()
    queue = sorted(modules)
    seen: set[str] = set()
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        top = name.split(".")[0]
        if top in _IGNORED or is_stdlib(top):
            continue
        if distribution_of(top) is not None:
            external.add(top)
            continue
        path = _module_file(name)
        if path is None:
            continue
        is_package = os.path.basename(path) == "__init__.py"
        rel = name.replace(".", "/") + ("/__init__.py" if is_package else ".py")
        with open(path, "rb") as f:
            source = f.read()
        files.setdefault(top, {})[rel] = source
        parent = name.rpartition(".")[0]
        if parent:
            queue.append(parent)  # its __init__.py runs on import
        queue.extend(_local_imports(source, name, is_package) - seen)
    return files, external


def _custom_requirement(top: str, files: dict[str, bytes]) -> CustomRequirement:
    if list(files) == [f"{top}.py"]:
        return CustomRequirement(name=top, is_package=False,
                                 source64zip=_compress(files[f"{top}.py"]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for rel in sorted(files):
            zf.writestr(rel, files[rel])
    return CustomRequirement(name=top, is_package=True, source64zip=_compress(buf.getvalue()))


def _installable(module: str, dist: str) -> PythonRequirement:
    return PythonRequirement(module=module, version=distributions.installed_version(module),
                             package_name=dist if dist != module else None)


def resolve(modules: Iterable[str]) -> list[PythonRequirement | CustomRequirement]:
    """Turn module names into pinned requirements (stdlib dropped, local code shipped).

    Local modules are shipped file by file: the modules used, their packages'
    ``__init__.py`` files and the local modules they import, never a whole tree.

    Example:
        >>> [r.package_name for r in resolve(["yaml", "json"])]
        ['PyYAML']
    """
    names = set(modules)
    tops = {m.split(".")[0] for m in names}
    out: list[PythonRequirement | CustomRequirement] = []
    local: set[str] = set()
    for top in sorted(tops):
        if top in _IGNORED or is_stdlib(top):
            continue
        dist = distribution_of(top)
        if dist is not None:
            out.append(_installable(top, dist))
        else:
            local.update(m for m in names if m.split(".")[0] == top)
    if local:
        files, external = _collect_local(local)
        for top in sorted(files):
            out.append(_custom_requirement(top, files[top]))
        known = {r.module for r in out if isinstance(r, PythonRequirement)}
        for top in sorted(external - known):
            dist = distribution_of(top)
            if dist is not None:
                out.append(_installable(top, dist))
    distributions.save_cache()
    return out


def unix_requirements(modules: Iterable[str]) -> list[UnixRequirement]:
    """System packages that some frameworks need at run time."""
    needs_gomp = {"xgboost", "lightgbm"} & {m.split(".")[0] for m in modules}
    return [UnixRequirement(package_name="libgomp1")] if needs_gomp else []


class ShippedCodeFinder(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Imports the local code shipped inside ``.mlem`` files straight from memory.

    Nothing is unpacked to disk, so no other user can plant or redirect files, and no
    folder goes on ``sys.path``. The finder sits first on ``sys.meta_path`` and answers
    only for the top-level names it ships, so the code a model was saved with wins over
    a same-named module elsewhere on ``sys.path``; a module already imported is kept.
    """

    ORIGIN = "<mlem_lib shipped code>"

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.tops: set[str] = set()

    def add(self, top: str, files: dict[str, bytes]) -> None:
        """Serve ``files`` (relative path -> source) for the top-level name ``top``."""
        for key in [k for k in self.files if k.split("/")[0] in (top, f"{top}.py")]:
            del self.files[key]
        self.files.update(files)
        self.tops.add(top)

    def _locate(self, fullname: str) -> tuple[str, bool] | None:
        """(key of its source in ``files``, is a package) or None."""
        base = fullname.replace(".", "/")
        if f"{base}/__init__.py" in self.files:
            return f"{base}/__init__.py", True
        if f"{base}.py" in self.files:
            return f"{base}.py", False
        if any(k.startswith(base + "/") for k in self.files):
            return f"{base}/__init__.py", True  # a folder without __init__.py
        return None

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        top = fullname.partition(".")[0]
        if top not in self.tops:
            return None
        if "." in fullname and getattr(sys.modules.get(top), "__loader__", None) is not self:
            return None  # the package was imported from elsewhere first: keep it whole
        found = self._locate(fullname)
        if found is None:
            return None
        key, is_package = found
        spec = importlib.util.spec_from_loader(fullname, self, origin=f"{self.ORIGIN}/{key}",
                                               is_package=is_package)
        if spec is not None:
            # modules often derive paths from __file__ at import time; give them a virtual one
            spec.has_location = True
        return spec

    def get_source(self, fullname: str) -> str:
        found = self._locate(fullname)
        if found is None:
            raise ImportError(f"no shipped source for {fullname}", name=fullname)
        return self.files.get(found[0], b"").decode("utf-8")

    def get_code(self, fullname: str) -> Any:
        found = self._locate(fullname)
        if found is None:
            raise ImportError(f"no shipped source for {fullname}", name=fullname)
        return compile(self.files.get(found[0], b""), f"{self.ORIGIN}/{found[0]}", "exec",
                       dont_inherit=True)

    def is_package(self, fullname: str) -> bool:
        found = self._locate(fullname)
        return bool(found and found[1])


_SHIPPED = ShippedCodeFinder()


def _valid_member(member: str) -> bool:
    parts = member.split("/")
    return (member.endswith(".py") and all(p.isidentifier() for p in parts[:-1])
            and parts[-1][:-3].isidentifier())


def install_custom(reqs: Iterable[CustomRequirement]) -> list[str]:
    """Make shipped local modules importable from memory (see :class:`ShippedCodeFinder`).

    A module that is already imported is kept as it is. Returns the top-level names
    served from the shipped code.

    Raises:
        MetadataError: a shipped module would shadow the standard library or mlem_lib.

    Example:
        >>> req = CustomRequirement(name="shipped_demo_mod", source64zip=_compress(b"X = 41"))
        >>> install_custom([req])
        ['shipped_demo_mod']
        >>> import shipped_demo_mod
        >>> shipped_demo_mod.X + 1
        42
    """
    from mlem_lib.errors import MetadataError

    served = []
    for req in reqs:
        top = req.name.split(".")[0]
        if is_stdlib(top) or top in _IGNORED:
            raise MetadataError(f"shipped module {req.name!r} would shadow the module of the "
                                "same name in the standard library or mlem_lib")
        if top in sys.modules:
            continue
        files = {m.replace("\\", "/"): body for m, body in custom_sources(req).items()}
        _SHIPPED.add(top, {m: body for m, body in files.items() if _valid_member(m)})
        served.append(top)
    if served and _SHIPPED not in sys.meta_path:
        sys.meta_path.insert(0, _SHIPPED)
    return served


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


def pip_lines(reqs: Iterable[Any], pin: str = "exact") -> list[str]:
    """``name==version`` lines for pip (``name~=version`` with ``pin="compatible"``), from
    installable requirements only."""
    return [r.pip_line(pin) for r in reqs if isinstance(r, PythonRequirement)]
