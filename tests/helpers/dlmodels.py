"""Small, real deep-learning models for the tests: built in seconds, nothing downloaded.

* :func:`mlp` / :func:`cnn`: PyTorch modules (an MLP on 4 features, a CNN on 1x28x28
  images) with fixed random weights;
* :func:`text_pair` / :func:`text_classifier` / :func:`feature_extractor`: a tiny BERT
  built from a config with a WordLevel tokenizer over a small vocabulary (the recipe in
  shared/README.md), as a (model, tokenizer) pair or a pipeline;
* :func:`wav_bytes` and :func:`bark`: a WAV file made with the standard library, and a
  function over WAV bytes (loudness and length of a clip), from
  :mod:`tests.helpers.audio`: a module of its own, because a function saved by reference
  ships its module, and every package that module imports (even inside a function, like
  torch here) becomes a requirement of the model and of its image.
"""

from __future__ import annotations

import os
from typing import Any

from tests.helpers.audio import bark, wav_bytes

__all__ = ["bark", "cnn", "feature_extractor", "mlp", "text_classifier", "text_pair",
           "tokenizer", "wav_bytes"]

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
