"""Hugging Face transformers: pipelines, and ``PreTrainedModel`` + tokenizer pairs.

Both are written with ``save_pretrained`` into the model's folder (``clf/config.json``,
``clf/model.safetensors``, ``clf/tokenizer.json``...): every file is an artifact with its
own size and hash, checked when the model is loaded, and nothing is pickled. Loading reads
only that folder (``local_files_only``): nothing is fetched from a model hub.

* A pipeline (``pipeline("text-classification", ...)``) answers ``predict(texts)`` as the
  pipeline does (a label and a score per text); a ``feature-extraction`` pipeline answers
  one embedding per text (the mean of its token vectors), an array of ``(n, hidden)``.
* A pair, saved as ``(model, tokenizer)``, is loaded back as that tuple. ``predict(texts)``
  tokenizes (padding, truncation) and answers the logits of a model with a head,
  ``(n, labels)`` (plus ``predict_proba``, their softmax, for classifiers), or the
  attention-masked mean of the last hidden states of a base model, ``(n, hidden)``.

Models are loaded on the CPU unless ``device=`` or ``$MLEM_DEVICE`` says otherwise.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlem_lib.errors import MetadataError
from mlem_lib.models.base import ModelHandler

if TYPE_CHECKING:
    from mlem_lib.meta import ModelIO

IO_TYPE = "transformers"
PIPELINE = "pipeline"
PRETRAINED = "pretrained"
FEATURE_EXTRACTION = "feature-extraction"


def _transformers() -> Any:
    from mlem_lib.extras import require

    return require("transformers", extra="transformers", feature="transformers models")


def _pair(obj: Any) -> tuple[Any, Any] | None:
    """``(model, tokenizer)`` when ``obj`` is such a pair (tuple, list or dict), else None."""
    tf = sys.modules.get("transformers")
    if tf is None:
        return None
    if isinstance(obj, dict) and set(obj) == {"model", "tokenizer"}:
        obj = (obj["model"], obj["tokenizer"])
    if not isinstance(obj, tuple | list) or len(obj) != 2:
        return None
    model, tokenizer = obj
    if isinstance(tokenizer, tf.PreTrainedModel):
        model, tokenizer = tokenizer, model
    if isinstance(model, tf.PreTrainedModel) and isinstance(tokenizer,
                                                            tf.PreTrainedTokenizerBase):
        return model, tokenizer
    return None


def _is_pipeline(obj: Any) -> bool:
    tf = sys.modules.get("transformers")
    return tf is not None and isinstance(obj, tf.Pipeline)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars or notices from transformers while we save and load."""
    import warnings

    logging = _transformers().utils.logging
    bars, verbosity = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def _texts(data: Any) -> Any:
    """The texts as a list (numpy arrays and Series of strings too); one string as is."""
    if isinstance(data, str):
        return data
    if hasattr(data, "tolist"):
        data = data.tolist()
    return list(data)


def _has_head(model: Any) -> bool:
    return type(model).__name__.endswith(("ForSequenceClassification",
                                          "ForTokenClassification", "ForMaskedLM",
                                          "ForCausalLM", "ForQuestionAnswering",
                                          "ForMultipleChoice", "ForImageClassification"))


def _is_classifier(model: Any) -> bool:
    return type(model).__name__.endswith("ForSequenceClassification")


def _mean_pool(hidden: Any, mask: Any = None) -> Any:
    """The mean over tokens of ``(n, tokens, hidden)``, counting only unmasked ones."""
    if mask is None:
        return hidden.mean(dim=1)
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class TransformersHandler(ModelHandler):
    """Pipelines and (model, tokenizer) pairs; saved with ``save_pretrained``."""

    types = ("transformers",)

    def matches(self, obj: Any) -> bool:
        return _is_pipeline(obj) or _pair(obj) is not None

    def methods(self, obj: Any) -> list[str]:
        pair = _pair(obj)
        if pair is not None and _is_classifier(pair[0]):
            return ["predict", "predict_proba"]
        return ["predict"]

    def io_type(self, obj: Any) -> str:
        return IO_TYPE

    def model_io(self, obj: Any) -> ModelIO:
        """The io type plus what loading needs: pipeline or pair, task, model class
        (``{type: transformers, kind: pipeline, task: text-classification, architecture:
        BertForSequenceClassification}``)."""
        from mlem_lib.meta import ModelIO

        if _is_pipeline(obj):
            fields = {"kind": PIPELINE, "task": obj.task,
                      "architecture": type(obj.model).__name__}
        else:
            pair = _pair(obj)
            assert pair is not None
            fields = {"kind": PRETRAINED, "architecture": type(pair[0]).__name__}
        return ModelIO.model_validate({"type": IO_TYPE, **fields})  # extra fields are kept

    def is_folder(self, io: ModelIO) -> bool:
        return io.type == IO_TYPE

    def dump_dir(self, obj: Any, folder: str) -> None:
        with _quiet():
            if _is_pipeline(obj):
                obj.save_pretrained(folder)
                return
            pair = _pair(obj)
            assert pair is not None
            pair[0].save_pretrained(folder)
            pair[1].save_pretrained(folder)

    def load_dir(self, folder: str, io: ModelIO, device: str | None = None) -> Any:
        from mlem_lib.models.torch import default_device

        tf = _transformers()
        extra = io.model_extra or {}
        kind, task = extra.get("kind"), extra.get("task")
        if kind not in (PIPELINE, PRETRAINED):
            raise MetadataError(f"transformers model of unknown kind {kind!r} (expected "
                                f"{PIPELINE} or {PRETRAINED})")
        architecture = str(extra.get("architecture") or "")
        model_cls = getattr(tf, architecture, None)
        if model_cls is None or not hasattr(model_cls, "from_pretrained"):
            model_cls = tf.AutoModel
        where = default_device(device)
        with _quiet():
            model = model_cls.from_pretrained(folder, local_files_only=True)
            model = model.to(where).eval()
            tokenizer = tf.AutoTokenizer.from_pretrained(folder, local_files_only=True)
            if kind == PIPELINE:
                return tf.pipeline(task, model=model, tokenizer=tokenizer, device=where)
        return model, tokenizer

    def artifact_modules(self, obj: Any, io: ModelIO, open_artifact: Any) -> set[str]:
        return {"transformers", "tokenizers", "safetensors", "torch"}

    # --- calling ------------------------------------------------------------------
    def call(self, obj: Any, method: str, data: Any) -> Any:
        import torch

        texts = _texts(data)
        if _is_pipeline(obj):
            if obj.task == FEATURE_EXTRACTION:
                many = [texts] if isinstance(texts, str) else texts
                with torch.inference_mode():
                    vectors = [out[0].mean(dim=0) for out in obj(many, return_tensors=True)]
                return torch.stack(vectors).cpu().numpy() if vectors else \
                    torch.empty((0, obj.model.config.hidden_size)).numpy()
            return obj(texts)
        pair = _pair(obj)
        if pair is None:
            raise MetadataError(f"not a transformers model: {type(obj).__name__}")
        model, tokenizer = pair
        batch = tokenizer([texts] if isinstance(texts, str) else texts, padding=True,
                          truncation=True, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            out = model(**batch)
        if _has_head(model) and getattr(out, "logits", None) is not None:
            logits = out.logits
            if method == "predict_proba":
                logits = logits.softmax(dim=-1)
            return logits.float().cpu().numpy()
        return _mean_pool(out.last_hidden_state, batch.get("attention_mask")).float().cpu().numpy()


HANDLER = TransformersHandler()
