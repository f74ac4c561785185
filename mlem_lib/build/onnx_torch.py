"""PyTorch models to ONNX with ``torch.onnx.export`` (``mlem build MODEL onnx``).

Models that take one tensor and answer one tensor export (eager modules and the
TorchScript modules ``save`` writes alike), with the batch axis left free. The export
uses PyTorch's TorchScript-based exporter (``dynamo=False``), which needs nothing beyond
torch and onnx; the tensor fed while tracing is made from the saved schema (zeros of its
dtype and shape, two rows). As for every export, the twin is then checked against the
model on the saved sample (:mod:`mlem_lib.build.onnx`).
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING, Any

from mlem_lib.errors import BuildError

if TYPE_CHECKING:
    from mlem_lib.build.onnx_convert import Conversion
    from mlem_lib.runner import LoadedModel

INPUT, OUTPUT = "input", "output"
DEFAULT_OPSET = 17


def _tensor_schema(type_: Any, what: str) -> tuple[list[int | None], str]:
    from mlem_lib.build.onnx import torch_tensor_type

    tensor = torch_tensor_type()
    shape, dtype = getattr(type_, "shape", None), getattr(type_, "dtype", None)
    if tensor is None or not isinstance(type_, tensor) or shape is None or dtype is None:
        described = type_.describe() if hasattr(type_, "describe") else type(type_).__name__
        raise BuildError(f"ONNX export of PyTorch models takes models whose {what} is one "
                         f"tensor (this one's is {described})")
    return list(shape), str(dtype)


def to_onnx(loaded: LoadedModel, opset: int | None) -> Conversion:
    """Export a saved PyTorch model's ``predict`` (its ``forward``) to ONNX.

    Raises:
        BuildError: the model takes or answers something else than one tensor, or
            ``torch.onnx.export`` cannot export it.
        MissingExtraError: torch or onnx is not installed.
    """
    from mlem_lib.build.onnx_convert import Conversion, _require, _version
    from mlem_lib.extras import require
    from mlem_lib.models.onnx import OnnxMethod

    torch = require("torch", extra="torch", feature="exporting PyTorch models to ONNX")
    onnx = _require("onnx", "exporting PyTorch models to ONNX")
    methods = loaded.meta.model_type.methods
    name = "predict" if "predict" in methods else next(iter(methods))
    sig = methods[name]
    if len(sig.args) != 1:
        raise BuildError(f"ONNX export of PyTorch models takes models of one argument "
                         f"({name} has {len(sig.args)})")
    shape, dtype = _tensor_schema(sig.args[0].type_, "argument")
    _tensor_schema(sig.returns, "result")
    example = torch.zeros([2 if d is None else d for d in shape], dtype=getattr(torch, dtype))
    model = loaded.model
    if hasattr(model, "eval"):
        model.eval()
    buffer = io.BytesIO()
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on TorchScript modules
            torch.onnx.export(model, (example,), buffer, dynamo=False,
                              input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: {0: "N"}, OUTPUT: {0: "N"}},
                              opset_version=opset or DEFAULT_OPSET)
    except Exception as exc:  # the exporter raises many kinds; say which in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BuildError(f"torch.onnx.export cannot export this model: {first}") from exc
    graph = onnx.load_from_string(buffer.getvalue())
    return Conversion(graph, "tensors", [], {name: OnnxMethod(outputs=[OUTPUT])},
                      {m: "only predict (forward) is exported" for m in methods if m != name},
                      f"torch.onnx {_version('torch')}")
