"""ONNX models: run with ONNX Runtime, methods and schemas read from the graph.

``save`` takes an ``onnx.ModelProto``, the path of an ``.onnx`` file or an
:class:`OnnxModel` (which also says how the graph is run: its methods, how a table
feeds the graph and the ONNX Runtime session options). The artifact is the graph's
own bytes; the ``.mlem`` file records, under ``model_type.io``, how to run it::

    io:
      type: onnx
      feed: tensors          # tensors | matrix | columns
      methods:
        predict: {outputs: [label], dtype: int64, squeeze: true}
      session: {providers: [CPUExecutionProvider], intra_op_num_threads: 0, ...}

* ``feed: tensors`` (a graph saved as is): the argument *is* the graph's inputs: an
  array for a graph with one input, a dict ``{input name: array}`` for several.
* ``feed: matrix``: the argument is a table (a DataFrame, or rows of values in the
  schema's column order); its columns are stacked into the one graph input.
* ``feed: columns``: each column of the table feeds the graph input of the same name
  as an ``(n, 1)`` array (what ``skl2onnx`` makes of a ``ColumnTransformer``).

Each method returns some graph outputs: one output is returned as an array, several as
a dict by output name. ``dtype`` and ``squeeze`` make the result look like the native
model's (an exported twin answers ``int64`` labels of shape ``(n,)`` as scikit-learn
does). A graph saved as is has one method, ``predict``, returning every output.

Input arrays are cast to the graph's element types from the schema (ONNX graphs
usually want ``float32``): never silently, a value out of the range of the graph's
type or of the wrong kind is a :class:`~mlem_lib.errors.SchemaError` naming the input
(a 400 over HTTP), and so is anything ONNX Runtime refuses as an invalid argument.

Example:
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skl2onnx import to_onnx
    >>> X = np.arange(8, dtype=np.float32).reshape(4, 2)
    >>> graph = to_onnx(LinearRegression().fit(X, X.sum(axis=1)), X[:1])
    >>> model = OnnxModel(graph)
    >>> [(i.name, i.dtype, i.shape) for i in model.inputs]
    [('X', 'float32', [None, 2])]
    >>> model.run("predict", np.array([[1.0, 2.0]])).round(3)
    array([[3.]], dtype=float32)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlem_lib.errors import MetadataError, MethodNotFoundError, SchemaError
from mlem_lib.models.base import ModelHandler

if TYPE_CHECKING:
    from mlem_lib.data.base import DataType
    from mlem_lib.meta import ModelIO, Signature

EXTRA = "onnx"
IO_TYPE = "onnx"
Feed = Literal["tensors", "matrix", "columns"]

# ONNX Runtime's type names -> numpy dtypes
_ORT_DTYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int8)": "int8", "tensor(int16)": "int16", "tensor(int32)": "int32",
    "tensor(int64)": "int64", "tensor(uint8)": "uint8", "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32", "tensor(uint64)": "uint64", "tensor(bool)": "bool",
    "tensor(string)": "object",
}
_OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
               "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def _ort() -> Any:
    from mlem_lib.extras import require

    return require("onnxruntime", extra=EXTRA, feature="running ONNX models")


class SessionConfig(BaseModel):
    """ONNX Runtime session options (saved with the model, under ``io.session``).

    Attributes:
        providers: execution providers in order of preference (CPU by default).
        intra_op_num_threads: threads one call may use (0: ONNX Runtime's default, one
            per physical core). 1 is fastest for one-row requests on a busy machine.
        inter_op_num_threads: threads across graph nodes (parallel mode only; 0: default).
        graph_optimization_level: ``disable``, ``basic``, ``extended`` or ``all``.
        execution_mode: ``sequential`` or ``parallel``.

    Example:
        >>> SessionConfig(intra_op_num_threads=1).session_options().intra_op_num_threads
        1
    """

    model_config = ConfigDict(extra="forbid")

    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])
    intra_op_num_threads: int = Field(default=0, ge=0)
    inter_op_num_threads: int = Field(default=0, ge=0)
    graph_optimization_level: Literal["disable", "basic", "extended", "all"] = "all"
    execution_mode: Literal["sequential", "parallel"] = "sequential"

    def session_options(self) -> Any:
        """The ``onnxruntime.SessionOptions`` these settings describe."""
        ort = _ort()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_num_threads
        options.inter_op_num_threads = self.inter_op_num_threads
        options.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, _OPT_LEVELS[self.graph_optimization_level])
        options.execution_mode = (ort.ExecutionMode.ORT_PARALLEL
                                  if self.execution_mode == "parallel"
                                  else ort.ExecutionMode.ORT_SEQUENTIAL)
        return options


class OnnxMethod(BaseModel):
    """One model method: the graph outputs it returns and how they are shaped.

    Attributes:
        outputs: graph output names; one is returned as is, several as a dict.
        dtype: cast the (single) output to this numpy dtype (the native model's).
        squeeze: drop a trailing axis of size 1 (``(n, 1)`` -> ``(n,)``).
        as_torch: answer a torch tensor (an exported PyTorch model answers like the model).
    """

    model_config = ConfigDict(extra="forbid")

    outputs: list[str]
    dtype: str | None = None
    squeeze: bool = False
    as_torch: bool = False


class OnnxIO(BaseModel):
    """What ``model_type.io`` records for an ONNX model (see the module docstring)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["onnx"] = "onnx"
    feed: Feed = "tensors"
    columns: list[str] = []
    methods: dict[str, OnnxMethod] = {}
    session: SessionConfig = Field(default_factory=lambda: SessionConfig())


class TensorSpec(BaseModel):
    """A graph input or output: its name, numpy dtype and shape (``None`` for free axes).

    ``dtype`` is ``None`` for values that are not tensors (sequences, maps); ``shape`` is
    ``None`` when the graph does not say.
    """

    name: str
    dtype: str | None
    shape: list[int | None] | None

    @classmethod
    def from_node_arg(cls, arg: Any) -> TensorSpec:
        shape = arg.shape
        dims: list[int | None] | None = None
        if isinstance(shape, list | tuple):
            dims = [d if isinstance(d, int) and d >= 0 else None for d in shape]
        return cls(name=arg.name, dtype=_ORT_DTYPES.get(arg.type), shape=dims)

    def data_type(self) -> DataType:
        """The schema of values of this tensor (anything goes for non-tensors)."""
        from mlem_lib.data.base import UnspecifiedType
        from mlem_lib.data.numpy import NumpyNdarrayType

        if self.dtype is None or self.shape is None:
            return UnspecifiedType()
        return NumpyNdarrayType(shape=list(self.shape), dtype=self.dtype)


def read_onnx_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of an ``.onnx`` file, checked to hold a graph ONNX Runtime can load.

    Raises:
        ObjectNotFoundError: no such file.
        UnsupportedObjectError: the file is not an ONNX model.
    """
    from mlem_lib.errors import ObjectNotFoundError, UnsupportedObjectError

    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ObjectNotFoundError(f"no ONNX file at {os.fspath(path)}") from None
    try:
        OnnxModel(data).session  # noqa: B018 - parsing is the check
    except Exception as exc:
        if isinstance(exc, ImportError):
            raise
        raise UnsupportedObjectError(f"{os.fspath(path)} is not an ONNX model ONNX Runtime "
                                     f"can load: {str(exc).splitlines()[0]}") from None
    return data


class OnnxModel:
    """An ONNX graph with what it takes to run it as a model.

    Args:
        model: an ``onnx.ModelProto``, the graph's bytes, or the path of an ``.onnx`` file.
        methods: method name -> :class:`OnnxMethod` (default: ``predict`` returning every
            output).
        feed: how a method's argument becomes the graph's inputs (module docstring).
        columns: for ``matrix`` and ``columns`` feeds, the table's columns in order.
        session: ONNX Runtime session options.
        signatures: the methods' schemas when they are known (an exported twin keeps the
            native model's); otherwise they are read from the graph.

    The ONNX Runtime session is created on first use and shared by all threads
    (``InferenceSession.run`` is thread-safe). Pickling keeps the bytes, not the session.
    """

    data: bytes

    def __init__(self, model: Any, *, methods: Mapping[str, OnnxMethod] | None = None,
                 feed: Feed = "tensors", columns: list[str] | None = None,
                 session: SessionConfig | None = None,
                 signatures: Mapping[str, Signature] | None = None) -> None:
        if isinstance(model, OnnxModel):
            model = model.data
        if isinstance(model, bytes | bytearray | memoryview):
            data = bytes(model)
        elif isinstance(model, str | os.PathLike):
            data = read_onnx_file(model)
        elif callable(getattr(model, "SerializeToString", None)):
            data = model.SerializeToString()
        else:
            raise TypeError(f"expected an onnx.ModelProto, bytes or a path, got "
                            f"{type(model).__name__}")
        self.data = data
        self.feed: Feed = feed
        self.columns = list(columns or [])
        self.session_config = session or SessionConfig()
        self._methods = dict(methods) if methods else None
        self.signatures = dict(signatures) if signatures else None
        self._session: Any = None
        self._lock = threading.Lock()

    # --- pickling: the bytes travel, the session is made again ------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        """The ``onnxruntime.InferenceSession`` (created on first use)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    ort = _ort()
                    self._session = ort.InferenceSession(
                        self.data, self.session_config.session_options(),
                        providers=self.session_config.providers)
                    self._input_specs = [TensorSpec.from_node_arg(a)
                                         for a in self._session.get_inputs()]
                    self._output_names = [o.name for o in self._session.get_outputs()]
        return self._session

    @property
    def inputs(self) -> list[TensorSpec]:
        """The graph's inputs."""
        _ = self.session
        return list(self._input_specs)

    @property
    def outputs(self) -> list[TensorSpec]:
        """The graph's outputs."""
        return [TensorSpec.from_node_arg(o) for o in self.session.get_outputs()]

    @property
    def methods(self) -> dict[str, OnnxMethod]:
        """Method name -> the outputs it returns."""
        if self._methods is None:
            self._methods = {"predict": OnnxMethod(outputs=[o.name for o in self.outputs])}
        return self._methods

    def io(self) -> OnnxIO:
        """What the ``.mlem`` file records about running this graph."""
        return OnnxIO(feed=self.feed, columns=self.columns, methods=self.methods,
                      session=self.session_config)

    def takes_arrays(self, arg_type: Any) -> bool:
        """Whether rows of values in the table's column order can replace the table
        (true for a ``matrix`` feed of the same columns: the server's array fast path)."""
        columns = [str(c) for c in getattr(arg_type, "columns", None) or []]
        return self.feed == "matrix" and bool(columns) and columns == self.columns

    # --- describing ---------------------------------------------------------------------
    def argument_type(self) -> DataType:
        """The schema of a method's argument, read from the graph (``tensors`` feed)."""
        from mlem_lib.data.builtin import DictType

        specs = self.inputs
        if len(specs) == 1:
            return specs[0].data_type()
        return DictType(item_types={s.name: s.data_type() for s in specs})

    def return_type(self, method: str) -> DataType:
        """The schema of a method's result, read from the graph."""
        from mlem_lib.data.builtin import DictType

        spec = self.methods[method]
        by_name = {o.name: o for o in self.outputs}
        types = {}
        for name in spec.outputs:
            out = by_name[name]
            if spec.dtype is not None or spec.squeeze:
                shape = out.shape
                if spec.squeeze and shape and shape[-1] == 1:
                    shape = shape[:-1]
                out = TensorSpec(name=name, dtype=spec.dtype or out.dtype, shape=shape)
            types[name] = out.data_type()
        if len(types) == 1:
            return next(iter(types.values()))
        return DictType(item_types=types)

    # --- running ------------------------------------------------------------------------
    def run(self, method: str, data: Any) -> Any:
        """Call ``method`` on ``data`` (see the module docstring for the argument's forms).

        Raises:
            MethodNotFoundError: no such method.
            SchemaError: the input cannot feed the graph (names the input).
        """
        spec = self.methods.get(method)
        if spec is None:
            raise MethodNotFoundError(f"model has no method '{method}' (it has: "
                                      f"{', '.join(self.methods)})")
        session = self.session
        feed = self.feed_dict(data)
        try:
            results = session.run(spec.outputs, feed)
        except Exception as exc:
            raise _input_error(exc, list(feed)) from None
        if len(results) == 1:
            return _shape_output(results[0], spec)
        return dict(zip(spec.outputs, results, strict=True))

    def feed_dict(self, data: Any) -> dict[str, Any]:
        """The graph's inputs for a method's argument, cast to the graph's element types."""
        specs = self._input_specs if self._session is not None else self.inputs
        if self.feed == "matrix":
            return {specs[0].name: _cast(_as_matrix(data, self.columns), specs[0])}
        if self.feed == "columns":
            return {spec.name: _cast(_column(data, spec.name), spec) for spec in specs}
        if len(specs) == 1 and not (isinstance(data, Mapping) and specs[0].name in data):
            return {specs[0].name: _cast(data, specs[0])}
        if not isinstance(data, Mapping):
            names = ", ".join(s.name for s in specs)
            raise SchemaError(f"the graph has {len(specs)} inputs ({names}): send an object "
                              "with one array per input", field=None,
                              expected=f"object with keys {names}", got=type(data).__name__)
        missing = [s.name for s in specs if s.name not in data]
        if missing:
            raise SchemaError(f"missing input '{missing[0]}'", field=missing[0],
                              expected=f"input {missing[0]!r}", got="missing")
        return {s.name: _cast(data[s.name], s) for s in specs}


def _as_matrix(data: Any, columns: list[str]) -> Any:
    import numpy as np

    if hasattr(data, "iloc"):  # a DataFrame: the schema's columns, in order
        if columns and list(map(str, data.columns)) != columns:
            data = data[columns]
        return data.to_numpy()
    return np.asarray(data)


def _column(data: Any, name: str) -> Any:
    import numpy as np

    if hasattr(data, "iloc"):
        if name not in data.columns:
            raise SchemaError(f"missing column '{name}'", field=name,
                              expected=f"column {name!r}", got="missing")
        return data[name].to_numpy().reshape(-1, 1)
    if isinstance(data, Mapping):
        return np.asarray(data[name]).reshape(-1, 1)
    raise SchemaError(f"expected a table with the column '{name}', got "
                      f"{type(data).__name__}", field=name, expected="a table",
                      got=type(data).__name__)


def _cast(value: Any, spec: TensorSpec) -> Any:
    """``value`` as an array of the input's element type, never losing a value silently."""
    import numpy as np

    from mlem_lib.data.numpy import coerce_dtype

    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    want = spec.dtype
    if want is None or str(arr.dtype) == want:
        return arr
    if want == "object":  # string tensors: every element a str
        flat = arr.ravel()
        bad = next((v for v in flat if not isinstance(v, str)), None) if arr.dtype.kind != "U" \
            else None
        if bad is not None:
            raise SchemaError(f"input '{spec.name}': expected text values, got "
                              f"{type(bad).__name__} {bad!r:.30}", field=spec.name,
                              expected="text", got=type(bad).__name__)
        return arr.astype(object)
    if arr.dtype.kind == "b" and np.dtype(want).kind in "iuf":
        return arr.astype(want)
    if arr.dtype.kind == "O":  # a table's mixed columns: numbers only
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise SchemaError(f"input '{spec.name}': expected {want} numbers", field=spec.name,
                              expected=want, got="non-numeric values") from None
    try:
        return coerce_dtype(arr, want, spec.name)
    except SchemaError as exc:
        raise SchemaError(f"input {exc}", field=spec.name, expected=exc.expected,
                          got=exc.got) from None


def _shape_output(value: Any, spec: OnnxMethod) -> Any:
    import numpy as np

    if spec.squeeze and getattr(value, "ndim", 0) >= 2 and value.shape[-1] == 1:
        value = value.reshape(value.shape[:-1])
    if spec.dtype is not None and isinstance(value, np.ndarray) and str(value.dtype) != spec.dtype:
        value = value.astype(spec.dtype)
    if spec.as_torch:
        from mlem_lib.extras import require

        torch = require("torch", extra="torch", feature="PyTorch models exported to ONNX")
        value = torch.from_numpy(np.ascontiguousarray(value))
    return value


def _input_error(exc: Exception, names: list[str]) -> Exception:
    """ONNX Runtime's refusal of an input as a :class:`SchemaError` naming it (others pass)."""
    if type(exc).__name__ not in ("InvalidArgument", "InvalidGraph") and not isinstance(
            exc, ValueError):
        return exc
    text = " ".join(str(exc).split())
    text = text.split(" : ", 3)[-1] if text.startswith("[ONNXRuntimeError]") else text
    field = next((n for n in names if f"input: {n} " in text + " " or f"'{n}'" in text),
                 names[0] if len(names) == 1 else None)
    return SchemaError(f"input '{field}': {text}" if field else text, field=field,
                       expected="what the graph declares", got="another type or shape")


def _is_proto(obj: Any) -> bool:
    return type(obj).__name__ == "ModelProto" and type(obj).__module__.split(".")[0] == "onnx"


class OnnxHandler(ModelHandler):
    """``onnx``: ONNX graphs run with ONNX Runtime."""

    types = ("onnx",)
    file_suffixes = (".onnx",)

    def matches(self, obj: Any) -> bool:
        return isinstance(obj, OnnxModel) or _is_proto(obj)

    def import_file(self, path: str) -> Any:
        """The graph of an ``.onnx`` file (``mlem import model.onnx models/m``)."""
        import onnx

        return onnx.load(path)

    @staticmethod
    def _model(obj: Any) -> OnnxModel:
        return obj if isinstance(obj, OnnxModel) else OnnxModel(obj)

    def methods(self, obj: Any) -> list[str]:
        return list(self._model(obj).methods)

    def io_type(self, obj: Any) -> str:
        return IO_TYPE

    def model_io(self, obj: Any) -> ModelIO:
        from mlem_lib.meta import ModelIO

        return ModelIO.model_validate(self._model(obj).io().model_dump(mode="json"))

    def signatures(self, obj: Any, sample: Any) -> dict[str, Signature] | None:
        """The methods' schemas: the model's own when it has them, else the graph's."""
        from mlem_lib.meta import Argument, Signature

        model = self._model(obj)
        if model.signatures is not None:
            return dict(model.signatures)
        arg = model.argument_type()
        return {m: Signature(name=m, args=[Argument(name="data", type_=arg)],
                             returns=model.return_type(m)) for m in model.methods}

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        f.write(self._model(obj).data)

    def load(self, data: bytes, io_type: str) -> Any:
        if io_type != IO_TYPE:
            raise MetadataError(f"unknown model io type {io_type!r} for onnx")
        return OnnxModel(data)

    def load_file(self, data: bytes, io: ModelIO, device: str | None = None) -> Any:
        if io.type != IO_TYPE:
            raise MetadataError(f"unknown model io type {io.type!r} for onnx")
        spec = OnnxIO.model_validate(io.model_dump())
        return OnnxModel(data, methods=spec.methods or None, feed=spec.feed,
                         columns=spec.columns, session=spec.session)

    def from_file(self, path: str) -> OnnxModel:
        """The model in an ``.onnx`` file (what ``save("model.onnx", ...)`` saves)."""
        return OnnxModel(path)

    def call(self, obj: Any, method: str, data: Any) -> Any:
        return self._model(obj).run(method, data)

    def extra_modules(self, obj: Any) -> list[str]:
        return ["onnxruntime", "numpy"]


HANDLER = OnnxHandler()
