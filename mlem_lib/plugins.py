"""The one registration seam: frameworks, data types, build kinds, deploy targets, listeners.

Every extension point of mlem_lib is a *group* of named plugins:

==========  ==========================  ==============================================
group       entry-point group           the object a name points at
==========  ==========================  ==============================================
models      ``mlem_lib.models``         a :class:`~mlem_lib.models.base.ModelHandler`
data        ``mlem_lib.data``           a :class:`~mlem_lib.data.base.DataType` subclass
builders    ``mlem_lib.builders``       a :class:`~mlem_lib.build.base.Builder`
targets     ``mlem_lib.targets``        a :class:`~mlem_lib.deploy.base.Target` subclass
listeners   ``mlem_lib.listeners``      a :class:`~mlem_lib.events.Listener` (events)
==========  ==========================  ==============================================

A plugin is registered by *reference* (``"package.module:attribute"``), so nothing is
imported until the plugin is used. mlem_lib's own plugins are the lines of
:data:`BUILTINS`: adding a framework, a data type, a build kind or a target is one
module plus one line there. Third-party packages declare the same thing as Python
entry points, as MLEM's ``mlem.contrib`` entry points allowed::

    # the plugin's pyproject.toml
    [project.entry-points."mlem_lib.targets"]
    kube = "mlem_kube.target:KubeTarget"

Entry points are only scanned when a name is not a builtin, or when a whole group is
listed (:func:`names`, :func:`candidates`), so importing mlem_lib stays cheap.

Some lookups go from an *object* to a plugin (which handler saves this model, which
data type describes this value). A builtin line can say which top-level modules the
objects it recognises come from (``claims``), so that saving a scikit-learn model never
imports the torch handler; :func:`candidates` uses them.

Example:
    >>> from mlem_lib import plugins
    >>> "sklearn" in plugins.names("models") and "local" in plugins.names("targets")
    True
    >>> plugins.register("builders", "echo", "builtins:print")
    >>> plugins.get("builders", "echo") is print
    True
    >>> plugins.unregister("builders", "echo")
    >>> try:
    ...     plugins.get("builders", "no-such")
    ... except LookupError as exc:
    ...     print(exc)
    unknown build kind 'no-such' (known: docker, docker-dir, onnx, pip)
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from mlem_lib.errors import PluginError, UnknownPluginError

Group = Literal["models", "data", "builders", "targets", "listeners"]
GROUPS: tuple[Group, ...] = ("models", "data", "builders", "targets", "listeners")
ENTRY_POINT_PREFIX = "mlem_lib."
_WORDS = {"models": "framework", "data": "data type", "builders": "build kind",
          "targets": "deployment target", "listeners": "event listener"}


@dataclass(frozen=True)
class Plugin:
    """One registered name.

    Attributes:
        group: the plugin group.
        name: the name used in ``.mlem`` files, declarations and on the command line.
        ref: ``"module:attribute"``, or the object itself for runtime registrations.
        claims: top-level modules whose objects this plugin recognises (used to pick
            candidates for an object without importing every plugin); empty means
            "ask me about any object".
        source: ``"builtin"``, ``"runtime"`` or the distribution of an entry point.
        detect: False for names that are only looked up (MLEM's aliases, types that are
            read from files but never inferred from an object).
        extra: the pip extra of mlem-lib the plugin needs (``"docker"``), checked before
            it is loaded so that a missing one is one line naming it.
        extra_modules: the modules of ``extra`` it imports (default: all of them).
    """

    group: str
    name: str
    ref: Any
    claims: tuple[str, ...] = ()
    source: str = "builtin"
    detect: bool = True
    extra: str | None = None
    extra_modules: tuple[str, ...] = ()

    def load(self) -> Any:
        """Import and return the plugin object."""
        if not isinstance(self.ref, str):
            return self.ref
        module_name, _, attr = self.ref.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except ImportError as exc:
            raise PluginError(f"{_WORDS.get(self.group, self.group)} {self.name!r} "
                              f"({self.source}) cannot be imported: {exc}") from exc
        except AttributeError as exc:
            raise PluginError(f"{_WORDS.get(self.group, self.group)} {self.name!r} "
                              f"({self.source}) points at {self.ref!r}, which does not "
                              f"exist") from exc
        return obj


def _builtin(group: Group, name: str, ref: str, *claims: str, extra: str | None = None,
             modules: tuple[str, ...] = ()) -> Plugin:
    return Plugin(group, name, ref, tuple(claims), extra=extra, extra_modules=modules)


def _lookup_only(group: Group, name: str, ref: str, *, extra: str | None = None) -> Plugin:
    return Plugin(group, name, ref, (), detect=False, extra=extra)


# mlem_lib's own plugins: one line each. Aliases (MLEM's names) point at the same object
# and are only looked up by name, never asked about an object.
BUILTINS: tuple[Plugin, ...] = (
    # frameworks; claims are the top-level modules of the model classes they save
    _builtin("models", "sklearn", "mlem_lib.models.sklearn:HANDLER", "sklearn", extra="sklearn"),
    _lookup_only("models", "sklearn_pipeline", "mlem_lib.models.sklearn:HANDLER",
                 extra="sklearn"),
    _builtin("models", "xgboost", "mlem_lib.models.xgboost:HANDLER", "xgboost", extra="xgboost"),
    _builtin("models", "lightgbm", "mlem_lib.models.lightgbm:HANDLER", "lightgbm",
             extra="lightgbm"),
    _builtin("models", "onnx", "mlem_lib.models.onnx:HANDLER", "onnx", "mlem_lib", extra="onnx",
             modules=("onnxruntime",)),
    _builtin("models", "catboost", "mlem_lib.models.catboost:HANDLER", "catboost",
             extra="catboost"),
    _builtin("models", "keras", "mlem_lib.models.keras:HANDLER", "keras", extra="keras"),
    _builtin("models", "torch", "mlem_lib.models.torch:HANDLER", "torch", extra="torch"),
    # pipelines, and (model, tokenizer) pairs: a tuple is a builtin object
    _builtin("models", "transformers", "mlem_lib.models.transformers:HANDLER", "transformers",
             "builtins", extra="transformers"),
    _builtin("models", "callable", "mlem_lib.models.callable:HANDLER"),
    _lookup_only("models", "python_class", "mlem_lib.models.callable:HANDLER"),
    # data types; claims are the top-level modules of the values they describe
    _lookup_only("data", "unspecified", "mlem_lib.data.base:UnspecifiedType"),
    _builtin("data", "primitive", "mlem_lib.data.primitive:PrimitiveType", "builtins"),
    _builtin("data", "list", "mlem_lib.data.builtin:ListType", "builtins"),
    _lookup_only("data", "array", "mlem_lib.data.builtin:ArrayType"),
    _builtin("data", "tuple", "mlem_lib.data.builtin:TupleType", "builtins"),
    _builtin("data", "dict", "mlem_lib.data.builtin:DictType", "builtins"),
    _builtin("data", "ndarray", "mlem_lib.data.numpy:NumpyNdarrayType", "numpy"),
    _builtin("data", "number", "mlem_lib.data.numpy:NumpyNumberType", "numpy"),
    _builtin("data", "dataframe", "mlem_lib.data.pandas:DataFrameType", "pandas"),
    _builtin("data", "series", "mlem_lib.data.pandas:SeriesType", "pandas"),
    _builtin("data", "torch", "mlem_lib.data.tensor:TorchTensorType", "torch"),
    _builtin("data", "image", "mlem_lib.data.image:ImageType", "PIL"),
    _builtin("data", "binary", "mlem_lib.data.binary:BinaryType", "builtins", "_io", "io"),
    # build kinds
    _builtin("builders", "pip", "mlem_lib.build.pip:BUILDER"),
    _builtin("builders", "docker", "mlem_lib.build.docker:BUILDER", extra="docker"),
    _builtin("builders", "docker-dir", "mlem_lib.build.dockerfile:BUILDER"),
    _builtin("builders", "onnx", "mlem_lib.build.onnx:BUILDER"),
    # deployment targets
    _builtin("targets", "local", "mlem_lib.deploy.local:LocalTarget"),
    _builtin("targets", "heroku", "mlem_lib.deploy.heroku:HerokuTarget", extra="docker"),
    _builtin("targets", "sagemaker", "mlem_lib.deploy.sagemaker:SageMakerTarget", extra="aws",
             modules=("boto3",)),
)

_lock = threading.RLock()
_runtime: dict[tuple[str, str], Plugin] = {}
_entry_points: dict[str, dict[str, Plugin]] = {}
# id(plugin) -> (plugin, loaded object); the plugin is kept so that its id is never reused
# by a later registration while the entry exists
_loaded: dict[int, tuple[Plugin, Any]] = {}
# (group, class) -> candidates; cleared whenever registrations change
_candidates: dict[tuple[str, type], list[Any]] = {}


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise PluginError(f"unknown plugin group {group!r} (groups: {', '.join(GROUPS)})")


def _scan_entry_points(group: str) -> dict[str, Plugin]:
    with _lock:
        found = _entry_points.get(group)
        if found is not None:
            return found
        from mlem_lib import distributions

        found = {}
        # read through the distributions index: cached on disk until packages change
        for name, value, dist in distributions.entry_points(ENTRY_POINT_PREFIX + group):
            found[name] = Plugin(group, name, value, (), f"entry point of {dist}")
        _entry_points[group] = found
        return found


def refresh() -> None:
    """Forget scanned entry points (after installing a plugin into the running process).

    Example:
        >>> refresh()
    """
    from mlem_lib import distributions

    with _lock:
        _entry_points.clear()
        _candidates.clear()
        distributions.refresh()


def register(group: Group, name: str, ref: Any, *, claims: Iterable[str] = ()) -> None:
    """Register a plugin for this process (tests, notebooks, an application's start-up).

    Args:
        group: ``models``, ``data``, ``builders`` or ``targets``.
        name: the name it goes by.
        ref: ``"module:attribute"`` or the object itself.
        claims: top-level modules whose objects it recognises (see :class:`Plugin`).

    Example:
        >>> register("builders", "noop", "builtins:len")
        >>> get("builders", "noop")([1, 2])
        2
        >>> unregister("builders", "noop")
    """
    _check_group(group)
    with _lock:
        _runtime[(group, name)] = Plugin(group, name, ref, tuple(claims), "runtime")
        _candidates.clear()


def unregister(group: Group, name: str) -> None:
    """Remove a runtime registration (builtins and entry points stay).

    Example:
        >>> unregister("builders", "never-registered")
    """
    with _lock:
        _runtime.pop((group, name), None)
        _candidates.clear()


def find(group: Group, name: str) -> Plugin | None:
    """The registration of ``name`` in ``group`` (runtime, then builtin, then entry points).

    Example:
        >>> find("targets", "heroku").ref
        'mlem_lib.deploy.heroku:HerokuTarget'
    """
    _check_group(group)
    with _lock:
        plugin = _runtime.get((group, name))
    if plugin is not None:
        return plugin
    for builtin in BUILTINS:
        if builtin.group == group and builtin.name == name:
            return builtin
    return _scan_entry_points(group).get(name)


def _load(plugin: Plugin) -> Any:
    key = id(plugin)
    with _lock:
        cached = _loaded.get(key)
        if cached is not None and cached[0] is plugin:
            return cached[1]
    obj = plugin.load()
    with _lock:
        _loaded[key] = (plugin, obj)
    return obj


def get(group: Group, name: str) -> Any:
    """The plugin object registered as ``name`` in ``group``, imported on first use.

    Raises:
        UnknownPluginError: nothing is registered under that name; the message lists
            the known names.
        MissingExtraError: the plugin needs a pip extra of mlem-lib that is not installed.
        PluginError: the registration points at something that cannot be imported.

    Example:
        >>> get("models", "sklearn").types[0]
        'sklearn'
    """
    plugin = find(group, name)
    if plugin is None:
        known = ", ".join(names(group))
        raise UnknownPluginError(f"unknown {_WORDS[group]} {name!r} (known: {known})",
                                 group=group, name=name)
    if plugin.extra:
        from mlem_lib.extras import need

        need(plugin.extra, f"the {name} {_WORDS[group]}", *plugin.extra_modules)
    return _load(plugin)


def _installed(plugin: Plugin) -> bool:
    """False for a plugin whose extra is missing (no object of its kind can exist then)."""
    if not plugin.extra:
        return True
    from mlem_lib.extras import EXTRAS, available

    return all(available(m) for m in plugin.extra_modules or EXTRAS[plugin.extra])


def plugins(group: Group) -> list[Plugin]:
    """Every registration of a group, runtime first, then builtins, then entry points.

    A name registered twice is listed once, by the registration :func:`find` would use.

    Example:
        >>> [p.name for p in plugins("targets")][:3]
        ['local', 'heroku', 'sagemaker']
    """
    _check_group(group)
    seen: set[str] = set()
    out: list[Plugin] = []
    with _lock:
        runtime = [p for (g, _), p in _runtime.items() if g == group]
    builtins = [p for p in BUILTINS if p.group == group]
    for plugin in [*runtime, *builtins, *_scan_entry_points(group).values()]:
        if plugin.name not in seen:
            seen.add(plugin.name)
            out.append(plugin)
    return out


def names(group: Group) -> list[str]:
    """The sorted names of a group.

    Example:
        >>> names("builders")
        ['docker', 'docker-dir', 'onnx', 'pip']
    """
    return sorted(p.name for p in plugins(group))


def candidates(group: Group, obj: Any) -> list[Any]:
    """Plugin objects that may recognise ``obj``, most specific first, each once.

    First those that claim a module of a class in ``type(obj).__mro__``, in MRO order
    (an ``XGBClassifier`` is also a scikit-learn estimator, and xgboost comes first);
    then runtime and entry-point plugins without claims; builtins without claims
    (generic fallbacks such as the callable handler) come last. The caller asks each
    candidate whether it really takes the object.

    Example:
        >>> [type(h).__name__ for h in candidates("models", len)]  # a builtin object
        ['TransformersHandler', 'CallableHandler']
    """
    key = (group, type(obj))
    with _lock:
        cached = _candidates.get(key)
    if cached is not None:
        return list(cached)
    every = [p for p in plugins(group) if p.detect and _installed(p)]
    modules = [cls.__module__.split(".")[0] for cls in type(obj).__mro__]
    ordered: list[Plugin] = []
    for module in modules:
        ordered.extend(p for p in every if module in p.claims and p not in ordered)
    ordered.extend(p for p in every if not p.claims and p.source != "builtin")
    ordered.extend(p for p in every if not p.claims and p.source == "builtin")
    out: list[Any] = []
    for plugin in ordered:
        loaded = _load(plugin)
        if not any(loaded is seen for seen in out):
            out.append(loaded)
    with _lock:
        _candidates[key] = out
    return list(out)
