"""PyTorch models: eager ``torch.nn.Module`` objects and TorchScript modules.

``save`` stores a model as TorchScript (io ``torchscript``) when it scripts, or else traces,
cleanly on the sample and the compiled module gives the same answer as the original on it:
such a model loads without its Python class. Any other module is written with
``torch.save`` (io ``torch_pickle``, pickled with cloudpickle), and the local code its class
comes from is shipped with it, as for any pickled model.

Models are loaded on the CPU (``map_location``) unless ``device=`` (``mlem.load``) or
``$MLEM_DEVICE`` says otherwise, and switched to eval mode. ``predict`` runs ``forward``
under ``torch.inference_mode()`` in eval mode; a tuple of tensors goes to a ``forward`` of
several arguments as positional arguments, a dict whose keys are its parameters as keyword
arguments. Results come back on the CPU.

Example:
    >>> import torch, tempfile, mlem_lib.api as mlem
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    >>> meta = mlem.save(net, tempfile.mkdtemp() + "/net", sample_data=torch.zeros(3, 4))
    >>> meta.model_type.io.type, meta.model_type.methods["predict"].returns.describe()
    ('torchscript', 'torch[float32, (n, 2)]')
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from mlem_lib.errors import MetadataError
from mlem_lib.models.base import ModelHandler

if TYPE_CHECKING:
    from mlem_lib.meta import ModelIO

DEVICE_ENV = "MLEM_DEVICE"
TORCHSCRIPT = "torchscript"
TORCH_PICKLE = "torch_pickle"
MLEM_TORCH_IO = "torch_io"  # MLEM 0.4's io type (with ``is_jit``)


def _torch() -> Any:
    from mlem_lib.extras import require

    return require("torch", extra="torch", feature="PyTorch models")


def default_device(device: str | None = None) -> str:
    """The device models are loaded on: ``device``, else ``$MLEM_DEVICE``, else ``cpu``.

    Example:
        >>> default_device("cuda:1"), default_device() in ("cpu", os.environ.get(DEVICE_ENV))
        ('cuda:1', True)
    """
    return device or os.environ.get(DEVICE_ENV) or "cpu"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """TorchScript's notices (deprecation, what it cannot compile) are not the user's
    concern: a module it cannot compile is saved as it is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _eval_mode(module: Any) -> Iterator[None]:
    """Eval mode for the duration (a model passed in training mode is put back)."""
    training = bool(getattr(module, "training", False))
    if training:
        module.eval()
    try:
        yield
    finally:
        if training:
            module.train()


def _is_script(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.jit.ScriptModule)


def _parameters(module: Any) -> list[str]:
    """The names of ``forward``'s positional parameters (``[]`` when unknown)."""
    forward = module.forward
    schema = getattr(forward, "schema", None)
    if schema is not None:  # a TorchScript method: its first argument is self
        return [a.name for a in schema.arguments[1:]]
    try:
        params = inspect.signature(forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def call_arguments(module: Any, data: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """How ``data`` is passed to ``forward``: a tuple spread over several parameters, a
    dict of its parameters as keywords, anything else as the one argument.

    Example:
        >>> import torch
        >>> class Two(torch.nn.Module):
        ...     def forward(self, x, y):
        ...         return x + y
        >>> call_arguments(Two(), (1, 2)), call_arguments(Two(), {"x": 1, "y": 2})[1]
        (((1, 2), {}), {'x': 1, 'y': 2})
    """
    names = _parameters(module)
    if isinstance(data, tuple) and len(names) > 1:
        return tuple(data), {}
    if isinstance(data, dict) and len(names) > 1 and set(data) <= set(names):
        return (), dict(data)
    return (data,), {}


def _to(value: Any, device: Any) -> Any:
    torch = sys.modules["torch"]
    if isinstance(value, torch.Tensor):
        return value if value.device == device else value.to(device)
    if type(value).__module__ == "numpy":
        return torch.as_tensor(value, device=device)
    if isinstance(value, tuple | list):
        return type(value)(_to(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def _to_cpu(value: Any) -> Any:
    torch = sys.modules["torch"]
    if isinstance(value, torch.Tensor):
        return value if value.device.type == "cpu" else value.cpu()
    if isinstance(value, tuple | list):
        return type(value)(_to_cpu(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value


def _device_of(module: Any) -> Any:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return sys.modules["torch"].device("cpu")


def _same(a: Any, b: Any) -> bool:
    """Whether two results are equal (tensors within float tolerance), recursively."""
    torch = sys.modules["torch"]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point() or a.is_complex():
            return bool(torch.allclose(a, b, rtol=1e-4, atol=1e-6, equal_nan=True))
        return bool(torch.equal(a, b))
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


class TorchHandler(ModelHandler):
    """``torch.nn.Module`` and TorchScript modules; ``predict`` is ``forward``."""

    types = ("torch",)
    file_suffixes = (".pt", ".pth", ".torchscript")

    def matches(self, obj: Any) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(obj, torch.nn.Module)

    def import_file(self, path: str) -> Any:
        """A TorchScript file (``torch.jit.save``), else a whole module ``torch.save``
        pickled (which runs code from the file: import only files you trust)."""
        from mlem_lib.errors import UnsupportedObjectError
        from mlem_lib.extras import require

        torch = require("torch", extra="torch", feature="importing PyTorch models")
        try:
            return torch.jit.load(path, map_location="cpu")
        except RuntimeError:  # not TorchScript: a torch.save file
            pass
        obj = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(obj, torch.nn.Module):
            raise UnsupportedObjectError(
                f"{path} holds a {type(obj).__name__}, not a module: a state_dict needs "
                "its model class; load it into the module and mlem_lib.api.save that")
        return obj

    def methods(self, obj: Any) -> list[str]:
        return ["predict"]

    def io_type(self, obj: Any) -> str:
        return TORCHSCRIPT if _is_script(obj) else TORCH_PICKLE

    # --- saving -------------------------------------------------------------------
    def prepare(self, obj: Any, sample: Any) -> Any:
        """A TorchScript module of ``obj`` (scripted, else traced on the sample) when it
        answers the sample as ``obj`` does; else ``obj`` itself (saved with torch.save)."""
        if _is_script(obj):
            return obj
        torch = _torch()
        from mlem_lib.inference import head

        with _quiet(), _eval_mode(obj):
            if sample is None:
                try:
                    return torch.jit.script(obj)
                except Exception:  # TorchScript refuses much of Python: keep the module
                    return obj
            args, kwargs = call_arguments(obj, _to(head(sample), _device_of(obj)))
            try:
                with torch.inference_mode():
                    expected = obj(*args, **kwargs)
            except Exception:
                return obj
            for compile_ in (self._script, self._trace):
                try:
                    compiled = compile_(obj, args, kwargs)
                    with torch.inference_mode():
                        answer = compiled(*args, **kwargs)
                except Exception:  # scripting or tracing failed: try the next, or keep obj
                    continue
                if _same(expected, answer):
                    return compiled
        return obj

    @staticmethod
    def _script(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return _torch().jit.script(obj)

    @staticmethod
    def _trace(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        torch = _torch()
        with warnings.catch_warnings():
            # "might cause the trace to be incorrect": data-dependent code, not traceable
            warnings.simplefilter("error", torch.jit.TracerWarning)
            with torch.no_grad():
                if kwargs:
                    return torch.jit.trace(obj, example_kwarg_inputs=kwargs)
                return torch.jit.trace(obj, args if len(args) > 1 else args[0])

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        torch = _torch()
        buf = io.BytesIO()
        with _quiet():
            if _is_script(obj):
                torch.jit.save(obj, buf)
            else:
                import cloudpickle

                torch.save(obj, buf, pickle_module=cloudpickle)
        f.write(buf.getvalue())

    def artifact_modules(self, obj: Any, io: ModelIO,
                         open_artifact: Callable[[], IO[bytes]] | None) -> set[str]:
        """torch, plus for a pickled module every module its pickle references."""
        from mlem_lib import requirements

        modules = {"torch"}
        if io.type != TORCH_PICKLE or open_artifact is None:
            return modules
        with open_artifact() as f, zipfile.ZipFile(f) as archive:
            for name in archive.namelist():
                if name.endswith("data.pkl"):
                    with archive.open(name) as pickled:
                        modules |= requirements.pickled_modules(io_bytes(pickled.read()))
        return modules | requirements.code_imports(obj, modules)

    # --- loading ------------------------------------------------------------------
    def load_file(self, data: bytes, io: ModelIO, device: str | None = None) -> Any:
        torch = _torch()
        where = default_device(device)
        script = io.type == TORCHSCRIPT or (io.type == MLEM_TORCH_IO
                                            and bool((io.model_extra or {}).get("is_jit")))
        if io.type not in (TORCHSCRIPT, TORCH_PICKLE, MLEM_TORCH_IO):
            raise MetadataError(f"unknown io type {io.type!r} for a torch model")
        with _quiet():
            if script:
                model = torch.jit.load(io_bytes(data), map_location=where)
            else:  # the bytes were checked against the metadata's hash before this
                model = torch.load(io_bytes(data), map_location=where, weights_only=False)
        model.eval()
        return model

    def load(self, data: bytes, io_type: str) -> Any:
        from mlem_lib.meta import ModelIO

        return self.load_file(data, ModelIO(type=io_type))

    # --- calling ------------------------------------------------------------------
    def call(self, obj: Any, method: str, data: Any) -> Any:
        torch = sys.modules.get("torch") or _torch()
        args, kwargs = call_arguments(obj, _to(data, _device_of(obj)))
        with _eval_mode(obj):
            try:
                with torch.inference_mode():
                    return _to_cpu(obj(*args, **kwargs))
            except RuntimeError as exc:
                # TorchScript's executor specialises the graph for autograd when the
                # module's first runs had grad enabled (a user trying the loaded model);
                # inference-mode tensors cannot go through that graph: no_grad can
                if not _is_script(obj) or "Inference tensors" not in str(exc):
                    raise
            with torch.no_grad():
                return _to_cpu(obj(*args, **kwargs))


def io_bytes(data: bytes) -> io.BytesIO:
    """A seekable file object over ``data``."""
    return io.BytesIO(data)


HANDLER = TorchHandler()
