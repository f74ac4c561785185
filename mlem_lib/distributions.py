"""Which installed distribution provides a module, looking only at the modules asked about.

``importlib.metadata.packages_distributions()`` parses the metadata of every installed
distribution (a third of a second in a venv with 240 of them) to answer a question about
three modules. Here each module is looked up on its own:

1. a distribution named like the module, or a well-known alias (``sklearn`` ->
   ``scikit-learn``, ``yaml`` -> ``PyYAML``), confirmed by its ``top_level.txt`` or
   ``RECORD``;
2. otherwise the metadata folders of the site directory holding the module, then those
   of editable installs (whose code lives elsewhere), read as plain text.

Answers (distribution name and version, or "none": a local module) are kept in memory
and in a small JSON file under the user's cache directory (``$MLEM_LIB_CACHE_DIR``,
else ``$XDG_CACHE_HOME/mlem_lib``, else ``~/.cache/mlem_lib``). That file is keyed on
the site directories of ``sys.path`` and their modification times: installing, removing
or upgrading a package adds or removes a ``*.dist-info`` folder, which changes the time
of its directory and so drops the cache.

Example:
    >>> distribution_of("yaml"), distribution_of("json"), distribution_of("yaml.loader")
    ('PyYAML', None, 'PyYAML')
    >>> version_of("PyYAML") == __import__("yaml").__version__
    True
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass, field

# import name -> distribution names to try first (checked against the files they install)
ALIASES: dict[str, tuple[str, ...]] = {
    "sklearn": ("scikit-learn",),
    "skimage": ("scikit-image",),
    "yaml": ("PyYAML",),
    "PIL": ("Pillow",),
    "cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python"),
    "dateutil": ("python-dateutil",),
    "google": ("protobuf",),
    "attr": ("attrs",),
    "bs4": ("beautifulsoup4",),
    "Crypto": ("pycryptodome",),
    "jwt": ("PyJWT",),
    "dotenv": ("python-dotenv",),
    "multipart": ("python-multipart",),
    "sentencepiece": ("sentencepiece",),
}

_META_SUFFIXES = (".dist-info", ".egg-info")
_CACHE_VERSION = 1


def normalize(name: str) -> str:
    """PEP 503 normalisation, as pip compares distribution names.

    Example:
        >>> normalize("Scikit_Learn"), normalize("zope.interface")
        ('scikit-learn', 'zope-interface')
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_folder_name(entry: str) -> str:
    """``scikit_learn-1.9.1.dist-info`` -> ``scikit-learn`` (the version is cut off)."""
    stem = entry.rsplit(".", 1)[0]
    return normalize(stem.split("-", 1)[0])


@dataclass
class _Site:
    """One directory of ``sys.path`` that holds distribution metadata folders."""

    path: str
    mtime_ns: int
    by_name: dict[str, list[str]] = field(default_factory=dict)  # normalized name -> folders


def _scan_sites(path_entries: tuple[str, ...]) -> list[_Site]:
    sites = []
    for entry in path_entries:
        path = os.path.abspath(entry or os.curdir)
        try:
            mtime = os.stat(path).st_mtime_ns
            names = os.listdir(path)
        except OSError:  # missing, a zip file, not readable
            continue
        site = _Site(path, mtime)
        for name in sorted(names):
            if name.endswith(_META_SUFFIXES):
                site.by_name.setdefault(_dist_folder_name(name), []).append(
                    os.path.join(path, name))
        if site.by_name:
            sites.append(site)
    return sites


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _module_name(filename: str) -> str | None:
    """``six.py`` -> ``six``, ``_cffi.cpython-311-x86_64-linux-gnu.so`` -> ``_cffi``."""
    for suffix in sorted(importlib.machinery.all_suffixes(), key=len, reverse=True):
        if filename.endswith(suffix):
            return filename[: -len(suffix)]
    return None


def _top_level_of(record_path: str) -> str | None:
    """The importable top-level name of one installed file, as importlib.metadata infers it."""
    parts = record_path.split("/")
    top = parts[0] if len(parts) > 1 else (_module_name(parts[0]) or parts[0])
    return None if "." in top or not top else top


def _provides(folder: str, module: str) -> bool:
    """Whether the distribution whose metadata is in ``folder`` installs top-level ``module``."""
    top_level = _read(os.path.join(folder, "top_level.txt"))
    if top_level is not None:
        return module in top_level.split()
    for listing in ("RECORD", "installed-files.txt", "SOURCES.txt"):
        text = _read(os.path.join(folder, listing))
        if text is None:
            continue
        if module not in text:
            return False
        for line in text.splitlines():
            path = line.split(",", 1)[0].strip().strip('"')
            if _top_level_of(path) == module:
                return True
        return False
    return False


def _headers(folder: str) -> tuple[str | None, str | None]:
    """``Name`` and ``Version`` from a folder's METADATA (or an egg's PKG-INFO)."""
    text = _read(os.path.join(folder, "METADATA")) or _read(os.path.join(folder, "PKG-INFO"))
    name = version = None
    for line in (text or "").splitlines():
        if not line.strip():
            break  # headers end at the first blank line
        key, _, value = line.partition(":")
        if key == "Name" and name is None:
            name = value.strip()
        elif key == "Version" and version is None:
            version = value.strip()
    return name, version


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """``name = value`` pairs of one ``[group]`` of an ``entry_points.txt``."""
    pairs = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group and "=" in line:
            name, _, value = line.partition("=")
            pairs.append((name.strip(), value.strip()))
    return pairs


def _is_editable(folder: str) -> bool:
    text = _read(os.path.join(folder, "direct_url.json"))
    if not text or "editable" not in text:
        return False
    try:
        info = json.loads(text)
    except ValueError:
        return False
    return isinstance(info, dict) and bool((info.get("dir_info") or {}).get("editable"))


def _cache_dir() -> str:
    root = os.environ.get("MLEM_LIB_CACHE_DIR")
    if root:
        return root
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mlem_lib")


class DistributionIndex:
    """Module -> (distribution, version) answers for one ``sys.path``, cached on disk."""

    def __init__(self, path_entries: tuple[str, ...]) -> None:
        self.path_entries = path_entries
        self.sites = _scan_sites(path_entries)
        self.key = [[s.path, s.mtime_ns] for s in self.sites]
        self._lock = threading.Lock()
        self._modules: dict[str, list[str | None] | None] = {}
        self._entry_points: dict[str, list[list[str]]] = {}
        self._versions: dict[str, str | None] = {}
        self._dirty = False
        ident = hashlib.sha256(f"{sys.prefix}\0{sys.version}".encode()).hexdigest()[:16]
        self.cache_file = os.path.join(_cache_dir(), f"distributions-{ident}.json")
        self._load_cache()

    # -- the on-disk cache --------------------------------------------------------------
    def _load_cache(self) -> None:
        text = _read(self.cache_file)
        if not text:
            return
        try:
            data = json.loads(text)
        except ValueError:
            return
        if data.get("version") == _CACHE_VERSION and data.get("key") == self.key:
            self._modules = dict(data.get("modules") or {})
            self._entry_points = dict(data.get("entry_points") or {})

    def save(self) -> None:
        """Write new answers to the cache file (best effort: a read-only home is fine)."""
        with self._lock:
            if not self._dirty:
                return
            data = {"version": _CACHE_VERSION, "key": self.key, "modules": self._modules,
                    "entry_points": self._entry_points}
            self._dirty = False
        folder = os.path.dirname(self.cache_file)
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".distributions-", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, self.cache_file)
        except OSError:
            pass

    # -- look-ups -----------------------------------------------------------------------
    def lookup(self, module: str) -> tuple[str, str | None] | None:
        """(distribution name, version) of the distribution installing top-level ``module``."""
        with self._lock:
            if module in self._modules:
                hit = self._modules[module]
                return (str(hit[0]), hit[1]) if hit else None
        found = self._find(module)
        answer: tuple[str, str | None] | None = None
        if found is not None:
            name, version = _headers(found)
            answer = (name or _dist_folder_name(os.path.basename(found)), version)
        with self._lock:
            self._modules[module] = list(answer) if answer else None
            self._dirty = True
        return answer

    def version(self, distribution: str) -> str | None:
        """The installed version of a distribution (first on ``sys.path``), or None."""
        key = normalize(distribution)
        with self._lock:
            if key in self._versions:
                return self._versions[key]
        version = None
        for site in self.sites:
            folders = site.by_name.get(key)
            if folders:
                version = _headers(folders[0])[1]
                break
        with self._lock:
            self._versions[key] = version
        return version

    def entry_points(self, group: str) -> list[list[str]]:
        """``[name, value, distribution]`` of every entry point in ``group``."""
        with self._lock:
            if group in self._entry_points:
                return self._entry_points[group]
        found: list[list[str]] = []
        seen: set[str] = set()
        for site in self.sites:
            for name, folders in site.by_name.items():
                if name in seen:
                    continue  # the first distribution of a name on sys.path wins
                seen.add(name)
                text = _read(os.path.join(folders[0], "entry_points.txt"))
                if text and f"[{group}]" in text:
                    dist = _headers(folders[0])[0] or name
                    found += [[ep, value, dist] for ep, value in _section(text, group)]
        with self._lock:
            self._entry_points[group] = found
            self._dirty = True
        return found

    def _find(self, module: str) -> str | None:
        # 1. a distribution named like the module, or an alias
        wanted = [normalize(module)] + [normalize(a) for a in ALIASES.get(module, ())]
        for name in wanted:
            for site in self.sites:
                for folder in site.by_name.get(name, ()):
                    if _provides(folder, module):
                        return folder
        # 2. the site directory that holds the module, then editable installs
        home = self._site_of(module)
        scanned = set()
        if home is not None:
            scanned.add(home.path)
            for folders in home.by_name.values():
                for folder in folders:
                    if _provides(folder, module):
                        return folder
        for site in self.sites:
            if site.path in scanned:
                continue
            for folders in site.by_name.values():
                for folder in folders:
                    if folder.endswith(".dist-info") and _is_editable(folder) and _provides(
                            folder, module):
                        return folder
        return None

    def _site_of(self, module: str) -> _Site | None:
        mod = sys.modules.get(module)
        origin = getattr(mod, "__file__", None) if mod is not None else None
        locations = list(getattr(mod, "__path__", None) or []) if mod is not None else []
        if origin is None and not locations:
            try:
                spec = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                spec = None
            if spec is None:
                return None
            origin = spec.origin
            locations = list(spec.submodule_search_locations or [])
        paths = [p for p in [origin, *locations] if p]
        for site in self.sites:
            prefix = site.path.rstrip(os.sep) + os.sep
            if any(os.path.abspath(p).startswith(prefix) for p in paths):
                return site
        return None


_index: DistributionIndex | None = None
_index_lock = threading.Lock()


def index() -> DistributionIndex:
    """The index for the current ``sys.path`` (rebuilt when ``sys.path`` changes)."""
    global _index
    entries = tuple(sys.path)
    with _index_lock:
        if _index is None or _index.path_entries != entries:
            _index = DistributionIndex(entries)
        return _index


def distribution_of(module: str) -> str | None:
    """The distribution that installs a module, e.g. ``sklearn.tree`` -> ``scikit-learn``."""
    found = index().lookup(module.split(".")[0])
    return found[0] if found else None


def installed_version(module: str) -> str | None:
    """The version of the distribution that installs ``module`` (None when there is none)."""
    found = index().lookup(module.split(".")[0])
    return found[1] if found else None


def version_of(distribution: str) -> str | None:
    """The installed version of a distribution by name, or None when it is not installed."""
    return index().version(distribution)


def entry_points(group: str) -> list[tuple[str, str, str]]:
    """(name, value, distribution) of the installed entry points of ``group``, cached.

    Example:
        >>> import importlib.metadata as md
        >>> ours = {(name, value) for name, value, _dist in entry_points("console_scripts")}
        >>> ours == {(e.name, e.value) for e in md.entry_points(group="console_scripts")}
        True
    """
    return [(n, v, d) for n, v, d in index().entry_points(group)]


def save_cache() -> None:
    """Persist the answers found in this process (called once a save has resolved them)."""
    if _index is not None:
        _index.save()


def refresh() -> None:
    """Forget every answer held in memory (after installing a package in-process)."""
    global _index
    with _index_lock:
        _index = None
