"""Small, real deep-learning models for the tests: built in seconds, nothing downloaded.

* :func:`mlp` / :func:`cnn`: PyTorch modules (an MLP on 4 features, a CNN on 1x28x28
  images) with fixed random weights;
* :func:`text_pair` / :func:`text_classifier` / :func:`feature_extractor`: a tiny BERT
  built from a config with a WordLevel tokenizer over a small vocabulary (the recipe in
  shared/README.md), as a (model, tokenizer) pair or a pipeline;
* :func:`wav_bytes` and :func:`bark`: a WAV file made with the standard library, and a
  function over WAV bytes (loudness and length of a clip).
"""

from __future__ import annotations

import io
import math
import os
import struct
import wave
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie", "great",
         "awful", "the", "is", "a", "film", "not"]


def mlp(seed: int = 0) -> Any:
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 3)).eval()


def cnn(seed: int = 0) -> Any:
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, kernel_size=3, padding=1), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 8, kernel_size=3, padding=1),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        torch.nn.Linear(8, 10)).eval()


def tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = {w: i for i, w in enumerate(VOCAB)}
    tok = Tokenizer(models.WordLevel(ids, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # [CLS] text [SEP], as BERT's own tokenizers write it (an empty text is two tokens)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def _config() -> Any:
    from transformers import BertConfig

    return BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                      num_attention_heads=2, intermediate_size=32, num_labels=2,
                      id2label={0: "NEG", 1: "POS"}, label2id={"NEG": 0, "POS": 1})


def text_pair(seed: int = 0) -> tuple[Any, Any]:
    """A randomly initialised BertForSequenceClassification and its tokenizer."""
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(_config()).eval(), tokenizer()


def text_classifier(seed: int = 0) -> Any:
    from transformers import pipeline

    model, tok = text_pair(seed)
    return pipeline("text-classification", model=model, tokenizer=tok, device="cpu")


def feature_extractor(seed: int = 0) -> Any:
    import torch
    from transformers import BertModel, pipeline

    torch.manual_seed(seed)
    return pipeline("feature-extraction", model=BertModel(_config()).eval(),
                    tokenizer=tokenizer(), device="cpu")


def wav_bytes(seconds: float = 0.25, freq: float = 440.0, amplitude: float = 0.5,
              rate: int = 8000) -> bytes:
    """A mono 16-bit WAV file of a sine tone."""
    frames = b"".join(struct.pack("<h", int(amplitude * 32767 * math.sin(
        2 * math.pi * freq * i / rate))) for i in range(int(seconds * rate)))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


def bark(clip: bytes) -> dict[str, Any]:
    """A 'dog bark translator': the clip's length and loudness, and a verdict."""
    import array
    import io as _io
    import wave as _wave

    with _wave.open(_io.BytesIO(clip)) as w:
        rate, samples = w.getframerate(), array.array("h", w.readframes(w.getnframes()))
    peak = max((abs(s) for s in samples), default=0) / 32767
    return {"seconds": round(len(samples) / rate, 3), "peak": round(peak, 3),
            "says": "woof" if peak > 0.3 else "..."}
