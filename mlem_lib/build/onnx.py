"""``mlem build MODEL onnx``: export a saved model to ONNX, checked against the model.

The export is a new saved model (``TARGET/<name>.onnx`` and ``TARGET/<name>.onnx.mlem``)
that takes the same input schema (a DataFrame model still takes the same columns) and
answers the same methods with the same return schemas: a classifier keeps its labels
and ``predict_proba``. Methods the ONNX graph cannot answer (``decision_function`` of
a scikit-learn classifier, say) are listed as ``native_only``; ``mlem serve --runtime
onnx`` still serves them with the native model.

Before anything is written the export runs a **parity check**: every exported method is
called on the sample rows saved with the model (``save(..., sample_data=...)``; another
sample with ``sample=FILE``) by the native model and by ONNX Runtime. Floats must agree
within ``tolerance`` relative to ``max(1, |native value|)`` (default 1e-5: ONNX graphs
compute in float32); labels, integers and text must be equal. The largest absolute
difference per method is reported and recorded in the new ``.mlem`` file under
``onnx_export``; above the tolerance the export is refused with
:class:`~mlem_lib.errors.ParityError`, naming the method and the difference.

Example:
    >>> result = export_onnx("models/rf", target="build/onnx")  # doctest: +SKIP
    >>> result.parity["predict_proba"].max_abs_diff  # doctest: +SKIP
    4.172325134277344e-07
"""

from __future__ import annotations

import os
import re
import warnings
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from mlem_lib.build.base import Builder, BuildOptions, BuildProgress
from mlem_lib.errors import BuildError, ParityError

if TYPE_CHECKING:
    from mlem_lib.build.onnx_convert import Conversion
    from mlem_lib.meta import ModelMeta, Signature
    from mlem_lib.models.onnx import OnnxMethod, OnnxModel
    from mlem_lib.runner import LoadedModel

DEFAULT_TOLERANCE = 1e-5
SAMPLE_ROWS = 1000


class MethodParity(BaseModel):
    """How one method of the export compares with the native model on the sample.

    Attributes:
        rows: sample rows compared.
        exact: True for labels, integers and text (which must be equal).
        max_abs_diff: the largest absolute difference (``None`` for text).
        max_rel_diff: the largest difference relative to ``max(1, |native value|)``.
        mismatches: values that differ beyond the tolerance (exact: that differ at all).
        passed: within the tolerance.
        detail: why it failed when the shapes or types do not even match.
    """

    rows: int
    exact: bool
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    mismatches: int = 0
    passed: bool = True
    detail: str | None = None

    def describe(self) -> str:
        """One line, e.g. ``max abs diff 4.2e-07 on 150 rows``."""
        if self.detail:
            return self.detail
        if self.exact:
            return f"{'exact' if not self.mismatches else f'{self.mismatches} values differ'} " \
                   f"on {self.rows} rows"
        return f"max abs diff {self.max_abs_diff:.3g} on {self.rows} rows"


class OnnxExportInfo(BaseModel):
    """What the new ``.mlem`` file records under ``onnx_export``.

    Attributes:
        source: the native model: ``path``, ``model_type`` and ``model_hash``.
        converter: the converter and its version.
        opset: the graph's ``ai.onnx`` opset.
        tolerance: the parity tolerance (relative, floats).
        sample: where the parity rows came from.
        parity: method -> its comparison.
        native_only: methods the graph does not answer -> why.
    """

    source: dict[str, str]
    converter: str
    opset: int | None = None
    tolerance: float
    sample: str
    parity: dict[str, MethodParity]
    native_only: dict[str, str] = {}


class OnnxExport(BaseModel):
    """What ``build(model, "onnx")`` produced.

    Attributes:
        path: the new saved model (load, serve or build it like any other).
        onnx_file: the ONNX graph itself (readable by any ONNX tool).
        model_hash: the new model's hash.
        info: converter, parity per method and the methods left native.
    """

    path: str
    onnx_file: str
    model_hash: str
    info: OnnxExportInfo


class OnnxOptions(BuildOptions):
    """Options of ``build(model, "onnx")`` (see :func:`export_onnx`)."""

    target: str = Field("build/onnx", description="folder for the exported model")
    name: str | None = Field(None, description="file name of the export (default: the "
                                               "model's name): TARGET/NAME.onnx(.mlem)")
    tolerance: float = Field(DEFAULT_TOLERANCE, ge=0, description=(
        "largest difference allowed on floats, relative to max(1, |native value|); labels "
        "and integers must be equal"))
    opset: int | None = Field(None, gt=0, description="ONNX opset (default: the "
                                                      "converter's)")
    sample: str | None = Field(None, description="data file (csv, parquet, npy, jsonl, a "
                                                 "saved data object) to check parity on "
                                                 "instead of the saved sample")


def _name_of(model: str) -> str:
    base = os.path.basename(re.split(r"[@#]", model.rstrip("/"))[0])
    if base.endswith(".mlem"):
        base = base[: -len(".mlem")]
    if base.endswith(".onnx"):
        base = base[: -len(".onnx")]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "model"


def parity_sample(loaded: LoadedModel, sample: str | None = None) -> tuple[Any, str]:
    """The rows to compare on, and where they came from.

    ``sample`` (a data file) first, then the rows saved with the model, then one row made
    from the input schema (a weak check: the export says so).

    Raises:
        BuildError: there is no way to make an input.
    """
    from mlem_lib.build.onnx_convert import _argument_type

    arg_type = _argument_type(loaded)
    if sample is not None:
        from mlem_lib.formats import open_source

        source = open_source(sample, arg_type)
        chunk = next(iter(source.chunks(SAMPLE_ROWS)), None)
        if chunk is None:
            raise BuildError(f"the sample {sample} has no rows")
        value = arg_type.from_chunk(chunk) if arg_type is not None else chunk
        return value, f"{sample}"
    if loaded.meta.sample is not None:
        return loaded.meta.sample.read(), "the sample saved with the model"
    example = arg_type.example() if arg_type is not None else None
    if example is None:
        default = loaded.handler.default_input(loaded.model)
        if default is None:
            raise BuildError("the model was saved without sample data: give a sample file "
                             "(--sample) to check the export on")
        return default, "one row of zeros (no sample was saved with the model)"
    return example, "one row made from the input schema (no sample was saved with the model)"


def compare(native: Any, exported: Any, tolerance: float) -> MethodParity:
    """Compare a method's native and exported answers.

    Example:
        >>> import numpy as np
        >>> p = compare(np.array([0.5, 2.0]), np.array([0.5, 2.00001], dtype=np.float32), 1e-5)
        >>> p.passed, p.max_rel_diff < 1e-5
        (True, True)
        >>> compare(np.array([1, 2]), np.array([1, 3]), 0.0).describe()
        '1 values differ on 2 rows'
    """
    import numpy as np

    a, b = np.asarray(native), np.asarray(exported)
    rows = int(a.shape[0]) if a.ndim else 1
    exact = a.dtype.kind not in "fc"
    if a.shape != b.shape:
        return MethodParity(rows=rows, exact=exact, passed=False,
                            detail=f"shape {tuple(b.shape)} differs from the native "
                                   f"{tuple(a.shape)}")
    if exact:
        if b.dtype.kind in "fc" and a.dtype.kind in "iub":
            b = b.astype(a.dtype) if np.all(np.mod(b, 1) == 0) else b
        equal = a == b
        mismatches = int(a.size - np.count_nonzero(equal))
        max_abs = None
        if a.dtype.kind in "iub" and b.dtype.kind in "iub" and a.size:
            max_abs = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
        return MethodParity(rows=rows, exact=True, max_abs_diff=max_abs,
                            mismatches=mismatches, passed=mismatches == 0)
    if b.dtype.kind not in "fciub":
        return MethodParity(rows=rows, exact=False, passed=False,
                            detail=f"values of dtype {b.dtype} instead of {a.dtype}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    both_nan = np.isnan(a64) & np.isnan(b64)
    diff = np.where(both_nan, 0.0, np.abs(a64 - b64))
    diff = np.where(np.isnan(diff), np.inf, diff)
    rel = diff / np.maximum(1.0, np.abs(np.nan_to_num(a64)))
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float(rel.max()) if rel.size else 0.0
    mismatches = int(np.count_nonzero(rel > tolerance))
    return MethodParity(rows=rows, exact=False, max_abs_diff=max_abs, max_rel_diff=max_rel,
                        mismatches=mismatches, passed=mismatches == 0)


def _shape_like_native(spec: OnnxMethod, sig: Signature) -> OnnxMethod | str:
    """The method's output spec, made to answer like the native model (or why it cannot)."""
    from mlem_lib.data.base import UnspecifiedType
    from mlem_lib.data.numpy import NumpyNdarrayType

    returns = sig.returns
    if isinstance(returns, UnspecifiedType):
        return spec
    tensor = torch_tensor_type()
    as_torch = tensor is not None and isinstance(returns, tensor)
    if not (as_torch or isinstance(returns, NumpyNdarrayType)):
        return f"it returns {returns.describe()}, not an array"
    shape, dtype = getattr(returns, "shape", None), getattr(returns, "dtype", None)
    if as_torch and dtype == "bfloat16":
        return "it returns bfloat16 tensors, which ONNX Runtime answers as float32"
    return spec.model_copy(update={"dtype": dtype, "squeeze": shape is not None
                                   and len(shape) == 1, "as_torch": as_torch})


def torch_tensor_type() -> type | None:
    """The torch tensor data type, where this installation has it (else None)."""
    try:
        from mlem_lib.data.tensor import TorchTensorType
    except ImportError:
        return None
    return TorchTensorType


def _opset(graph: Any) -> int | None:
    for entry in graph.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None


def twin_model(loaded: LoadedModel, conversion: Conversion) -> tuple[OnnxModel,
                                                                      dict[str, str]]:
    """The ONNX model answering like ``loaded``, and the methods it leaves to the native."""
    from mlem_lib.models.onnx import OnnxModel

    methods: dict[str, OnnxMethod] = {}
    skipped = dict(conversion.skipped)
    for name, spec in conversion.methods.items():
        shaped = _shape_like_native(spec, loaded.signature(name))
        if isinstance(shaped, str):
            skipped[name] = shaped
        else:
            methods[name] = shaped
    if not methods:
        raise BuildError("the ONNX export answers none of the model's methods like the "
                         f"model: {'; '.join(f'{m}: {r}' for m, r in skipped.items())}")
    signatures = {m: loaded.meta.model_type.methods[m] for m in methods}
    twin = OnnxModel(conversion.graph, methods=methods, feed=conversion.feed,
                     columns=conversion.columns, signatures=signatures)
    return twin, skipped


def check_parity(loaded: LoadedModel, twin: OnnxModel, sample: Any,
                 tolerance: float) -> dict[str, MethodParity]:
    """Call every method of ``twin`` and of the native model on ``sample`` and compare."""
    out: dict[str, MethodParity] = {}
    data = loaded.validate(next(iter(twin.methods)), sample)
    for method in twin.methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            native = loaded.call(method, data, validate=False)
        try:
            exported = twin.run(method, data)
        except Exception as exc:
            rows = loaded.signature(method).args[0].type_.rows(data) or 0
            out[method] = MethodParity(rows=rows, exact=False, passed=False,
                                       detail=f"ONNX Runtime failed on the sample: "
                                              f"{type(exc).__name__}: {exc}")
            continue
        out[method] = compare(native, exported, tolerance)
    return out


def parity_failure(parity: dict[str, MethodParity], tolerance: float, model: str) -> str | None:
    """The error message for the methods that failed parity, or None."""
    failed = {m: p for m, p in parity.items() if not p.passed}
    if not failed:
        return None
    parts = []
    for method, p in failed.items():
        if p.detail:
            parts.append(f"{method}: {p.detail}")
        elif p.exact:
            parts.append(f"{method}: {p.mismatches} values differ from the native model on "
                         f"{p.rows} rows (labels and integers must be equal)")
        else:
            parts.append(f"{method}: differs from the native model by up to "
                         f"{p.max_abs_diff:.3g} (max abs difference on {p.rows} rows; "
                         f"{p.max_rel_diff:.3g} relative), above the tolerance {tolerance:g}")
    return (f"the ONNX export of {model} does not answer like the model: "
            + "; ".join(parts) + " (raise --tolerance to accept it, or serve natively)")


def export_onnx(model: str, target: str = "build/onnx", name: str | None = None, *,
                tolerance: float = DEFAULT_TOLERANCE, opset: int | None = None,
                sample: str | None = None, repo: str | None = None,
                progress: BuildProgress = None) -> OnnxExport:
    """Export a saved model to ONNX as a new saved model, after checking its answers.

    Args:
        model: the saved model's path, URL or registry reference.
        target: folder of the export (``TARGET/NAME.onnx`` and ``.onnx.mlem``).
        name: the export's file name (default: the model's name).
        tolerance: largest difference allowed on floats, relative to ``max(1, |native|)``.
        opset: ONNX opset (default: the converter's).
        sample: a data file to check parity on (default: the saved sample).
        repo: git repository for registry references.
        progress: receives progress lines.

    Raises:
        ParityError: a method answers differently from the native model (names it and
            the difference); nothing is written.
        BuildError: no converter for the framework, or the conversion failed.
        MissingExtraError: the converter or ONNX Runtime is not installed.
    """
    from mlem_lib.runner import LoadedModel

    say = progress or (lambda line: None)
    loaded = LoadedModel.load(model, repo=repo)
    conversion = _convert(loaded, opset)
    say(f"converted with {conversion.converter}")
    info, twin = _checked_twin(loaded, conversion, model, tolerance, sample, say)
    path = os.path.join(target, f"{name or _name_of(model)}.onnx")
    meta = save_twin(twin, loaded.meta, path, info)
    return OnnxExport(path=path, onnx_file=path, model_hash=meta.model_hash, info=info)


def _convert(loaded: LoadedModel, opset: int | None) -> Conversion:
    from mlem_lib.build.onnx_convert import convert

    return convert(loaded, opset)


def _checked_twin(loaded: LoadedModel, conversion: Conversion, model: str, tolerance: float,
                  sample: str | None, say: Any) -> tuple[OnnxExportInfo, OnnxModel]:
    twin, skipped = twin_model(loaded, conversion)
    if not twin.methods:
        raise BuildError(f"the ONNX export of {model} answers none of its methods like the "
                         f"model: {'; '.join(f'{m}: {r}' for m, r in skipped.items())}")
    rows, where = parity_sample(loaded, sample)
    parity = check_parity(loaded, twin, rows, tolerance)
    for method, p in parity.items():
        say(f"parity {method}: {p.describe()}")
    message = parity_failure(parity, tolerance, model)
    if message is not None:
        raise ParityError(message, parity={m: p.model_dump() for m, p in parity.items()})
    info = OnnxExportInfo(
        source={"path": model, "model_type": loaded.meta.model_type.type,
                "model_hash": loaded.meta.model_hash},
        converter=conversion.converter, opset=_opset(conversion.graph), tolerance=tolerance,
        sample=where, parity=parity, native_only=skipped)
    return info, twin


def save_twin(twin: OnnxModel, native: ModelMeta, path: str, info: OnnxExportInfo) -> ModelMeta:
    """Save an exported graph with the native model's methods and the export's record."""
    from mlem_lib.meta import ModelType
    from mlem_lib.models.onnx import HANDLER
    from mlem_lib.objects import save_model

    model_type = ModelType(type="onnx", methods=dict(twin.signatures or {}),
                           io=HANDLER.model_io(twin))
    return save_model(twin, path, None, description=native.description,
                      labels=list(native.labels), model_type=model_type,
                      extra_fields={"onnx_export": info.model_dump(mode="json"),
                             "sample": native.sample})


class OnnxBuilder(Builder[OnnxOptions, OnnxExport]):
    """``onnx``: the model exported to ONNX, as a new saved model, checked for parity."""

    name = "onnx"
    description = ("the model exported to ONNX as a new saved model (TARGET/NAME.onnx + "
                   ".mlem) with the same methods and schemas, checked against the model on "
                   "the saved sample (--tolerance)")
    Options = OnnxOptions
    Result = OnnxExport

    def build(self, model: str, options: OnnxOptions, *, repo: str | None = None,
              progress: BuildProgress = None) -> OnnxExport:
        return export_onnx(model, options.target, options.name, tolerance=options.tolerance,
                           opset=options.opset, sample=options.sample, repo=repo,
                           progress=progress)

    def summary(self, result: OnnxExport) -> list[str]:
        info = result.info
        lines = [f"exported {info.source['path']} to {result.onnx_file} ({info.converter}, "
                 f"opset {info.opset})",
                 f"parity on {info.sample} (tolerance {info.tolerance:g} relative; labels "
                 "exact):"]
        lines += [f"  {m}: {p.describe()}" for m, p in info.parity.items()]
        if info.native_only:
            lines.append("not in the graph (mlem serve --runtime onnx answers them with the "
                         "native model): " + ", ".join(info.native_only))
        lines.append(f"serve:   mlem serve {result.path}")
        return lines


BUILDER = OnnxBuilder()
