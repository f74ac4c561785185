"""Keras 3 models (``keras.Model``: Sequential, functional and subclassed models), in Keras'
own ``.keras`` format.

The ``.mlem`` file records the backend the model was saved with::

    io: {type: keras_v3, backend: torch}

Keras picks its backend when it is first imported, from ``$KERAS_BACKEND`` (else
``~/.keras/keras.json``, else TensorFlow). Loading a saved model sets ``$KERAS_BACKEND`` to
the recorded backend when neither Keras is imported yet nor the variable is set, so a
model saved with the torch backend loads with torch in a fresh process (a server, a
container) without TensorFlow. The requirements name the backend's package too.

Tested backend: **torch** (``torch==2.13.0+cpu``). TensorFlow's and JAX's builds were not
tested here (TensorFlow alone is a download of several hundred MB); the ``.keras`` format is
the same for all three, so a model of standard layers loads under any of them.

``predict`` answers with ``Model.predict_on_batch`` for up to :data:`ONE_BATCH` rows (a
one-row ``Model.predict`` costs about 20 ms of set-up, ``predict_on_batch`` 4 ms) and with
``Model.predict`` in batches above that.

Example:
    >>> import os, tempfile
    >>> keras = _keras("torch")
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> HANDLER.model_io(model).backend
    'torch'
    >>> HANDLER.call(model, "predict", [[1.0, 2.0, 3.0]]).shape
    (1, 2)
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import IO, TYPE_CHECKING, Any

from mlem_lib.errors import MetadataError, MissingExtraError
from mlem_lib.models.base import ModelHandler

if TYPE_CHECKING:
    from mlem_lib.meta import ModelIO

IO_TYPE = "keras_v3"
BACKEND_ENV = "KERAS_BACKEND"
#: the package each Keras backend runs on (what a saved model requires besides keras)
BACKEND_MODULES = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow",
                   "numpy": "numpy", "openvino": "openvino"}
#: the backend the tests run (the ``[torch]`` extra installs it)
TESTED_BACKEND = "torch"
#: up to this many rows, ``predict`` is one ``predict_on_batch`` call
ONE_BATCH = 1024


def _keras(backend: str | None = None) -> Any:
    """Import Keras, first choosing ``backend`` when nothing chose one yet.

    Raises:
        MissingExtraError: Keras, or the package of its backend, is not installed.
    """
    from mlem_lib.extras import require

    if backend and "keras" not in sys.modules and not os.environ.get(BACKEND_ENV):
        os.environ[BACKEND_ENV] = backend
    try:
        return require("keras", extra="keras", feature="Keras models")
    except MissingExtraError as exc:
        missing = getattr(exc.__cause__, "name", None)
        if missing in BACKEND_MODULES.values():
            chosen = os.environ.get(BACKEND_ENV) or "tensorflow"
            error = MissingExtraError("Keras models", "keras", missing)
            error.msg = (f"Keras models with the {chosen} backend need {missing!r}, which is "
                         "not installed: " + ("pip install 'mlem-lib[keras,torch]'"
                                              if missing == TESTED_BACKEND else
                                              f"pip install {missing}, or use the torch "
                                              "backend (KERAS_BACKEND=torch, pip install "
                                              "'mlem-lib[keras,torch]')"))
            error.args = (error.msg,)  # an ImportError's str() is its msg
            raise error from exc
        raise


class KerasHandler(ModelHandler):
    """``keras``: Keras 3 models in the ``.keras`` format."""

    types = ("keras",)
    file_suffixes = (".keras",)

    def matches(self, obj: Any) -> bool:
        return isinstance(obj, _keras().Model)

    def import_file(self, path: str) -> Any:
        """A model from a ``.keras`` file (``mlem import model.keras models/net``)."""
        return _keras().saving.load_model(path, compile=False)

    def methods(self, obj: Any) -> list[str]:
        return ["predict"]

    def io_type(self, obj: Any) -> str:
        return IO_TYPE

    def model_io(self, obj: Any) -> ModelIO:
        from mlem_lib.meta import ModelIO

        return ModelIO.model_validate({"type": IO_TYPE,
                                       "backend": _keras().backend.backend()})

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        # Keras writes .keras archives to a path ending in .keras only
        with tempfile.TemporaryDirectory(prefix="mlem-keras-") as tmp:
            path = os.path.join(tmp, "model.keras")
            obj.save(path)
            with open(path, "rb") as src:
                f.write(src.read())

    def load(self, data: bytes, io_type: str) -> Any:
        return self._load(data, io_type, None)

    def load_file(self, data: bytes, io: ModelIO, device: str | None = None) -> Any:
        return self._load(data, io.type, getattr(io, "backend", None))

    def _load(self, data: bytes, io_type: str, backend: str | None) -> Any:
        if io_type != IO_TYPE:
            raise MetadataError(f"unknown model io type {io_type!r} for keras")
        keras = _keras(backend)
        with tempfile.TemporaryDirectory(prefix="mlem-keras-") as tmp:
            path = os.path.join(tmp, "model.keras")
            with open(path, "wb") as out:
                out.write(data)
            return keras.saving.load_model(path, compile=False)

    def from_file(self, path: str) -> Any:
        """The model in a ``.keras`` file (what ``save("model.keras", ...)`` saves)."""
        return _keras().saving.load_model(path, compile=False)

    def call(self, obj: Any, method: str, data: Any) -> Any:
        if method != "predict":
            return super().call(obj, method, data)
        import numpy as np

        if hasattr(data, "to_numpy"):  # a DataFrame: its columns in order
            data = data.to_numpy()
        elif isinstance(data, list | tuple):
            data = np.asarray(data)
        rows = _rows(data)
        if rows is not None and rows <= ONE_BATCH:
            result = obj.predict_on_batch(data)
        else:
            result = obj.predict(data, verbose=0)
        return _to_numpy(result)

    def default_input(self, obj: Any) -> Any:
        import numpy as np

        inputs = getattr(obj, "inputs", None)
        if not inputs or len(inputs) != 1:
            return None
        shape = tuple(1 if d is None else d for d in inputs[0].shape)
        return np.zeros(shape, dtype=str(inputs[0].dtype))

    def extra_modules(self, obj: Any) -> list[str]:
        backend = str(_keras().backend.backend())
        return ["keras", "numpy", *([BACKEND_MODULES[backend]]
                                    if backend in BACKEND_MODULES else [])]


def _rows(data: Any) -> int | None:
    if isinstance(data, dict):
        return next((_rows(v) for v in data.values()), None)
    shape = getattr(data, "shape", None)
    return int(shape[0]) if shape else None


def _to_numpy(result: Any) -> Any:
    """numpy arrays, whatever the backend answers with (a dict or list of them stays one)."""
    import numpy as np

    if isinstance(result, dict):
        return {k: _to_numpy(v) for k, v in result.items()}
    if isinstance(result, list | tuple):
        return [_to_numpy(v) for v in result]
    if hasattr(result, "detach"):  # a torch tensor
        return result.detach().cpu().numpy()
    return np.asarray(result)


HANDLER = KerasHandler()
