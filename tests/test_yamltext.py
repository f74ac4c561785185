"""The YAML writer of .mlem files reads back, with PyYAML's loaders, as exactly what was written."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import yaml

from mlem_lib import yamltext

TRICKY_STRINGS = [
    "", " ", "a", "yes", "No", "ON", "off", "y", "N", "null", "Null", "~", "true", "False",
    "1", "-1", "0x1F", "0o17", "012", "1_000", "1.5", ".5", "1e3", "1.0e-05", ".inf", "-.Inf",
    ".nan", "2026-12-02", "2026-12-02 04:00:00", "12:30:45", "<<", "=", "-", "- a", "? x",
    "a: b", "a:b", "a #b", "#x", "'quoted'", '"dq"', "back\\slash", "tab\there", "new\nline",
    "cr\rlf", "trailing ", " leading", "two  spaces", "sepal length (cm)", "model.pkl",
    "scikit-learn", "s3://bucket/key", "@at", "`tick", "%percent", "&anchor", "*alias", "!tag",
    "|pipe", ">fold", "[list]", "{map}", "a,b", "é", "日本語", "emoji 😀", "\x00nul", "\x07bell",
    "\x7fdel", "\x85nel", "\u2028ls", "\u2029ps", "\ufeffbom", "\x9fc1", "\ufffe", "a" * 300,
    "eJzLzC3ILypRyCvNLahUSCxWyCvg4kpJTVNILEstSkxP1ShLzClNLda04lIAgqLUktKiPKAavdzUxDyonI5CYkVmsa2BJhcA+Y0ZkA==",
]
NUMBERS = [0, -0, 1, -7, 2**63, -(2**70), 0.0, -0.0, 0.1, 1e-05, 1e22, 1.5e300, -2.5e-300,
           5e-324, math.pi, float("inf"), float("-inf"), 1.0, 123456789.125]


def _loaders():
    loaders = [yaml.SafeLoader]
    if hasattr(yaml, "CSafeLoader"):
        loaders.append(yaml.CSafeLoader)
    return loaders


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def _random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice(TRICKY_STRINGS)
    if kind == 1:
        return rng.choice(NUMBERS)
    if kind == 2:
        return rng.choice([None, True, False, float("nan")])
    if kind == 3:
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x3000),
                                       rng.randrange(0x10000, 0x10FFFF)]))
                       for _ in range(rng.randrange(0, 12))).replace("\ud800", "")
    if kind == 4:
        return rng.uniform(-1e6, 1e6)
    if kind in (5, 6):
        return {rng.choice(TRICKY_STRINGS) + str(i): _random_value(rng, depth + 1)
                for i in range(rng.randrange(0, 5))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]


def _clean(value):
    """Drop lone surrogates, which no UTF-8 file can hold."""
    if isinstance(value, str):
        return "".join(ch for ch in value if not 0xD800 <= ord(ch) <= 0xDFFF)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


@pytest.mark.parametrize("loader", _loaders(), ids=lambda cls: cls.__name__)
def test_tricky_scalars_read_back_unchanged(loader):
    doc = {"strings": TRICKY_STRINGS, "numbers": NUMBERS,
           "keys": {s: i for i, s in enumerate(TRICKY_STRINGS)},
           "misc": [None, True, False, float("nan"), [], {}, [[1, [2, []]], {"a": [{}]}]]}
    text = yamltext.dump(doc)
    assert _same(doc, yaml.load(text.encode(), Loader=loader))


@pytest.mark.parametrize("loader", _loaders(), ids=lambda cls: cls.__name__)
def test_random_documents_read_back_unchanged(loader):
    rng = random.Random(20261202)
    for _ in range(300):
        doc = _clean(_random_value(rng))
        text = yamltext.dump(doc)
        assert _same(doc, yaml.load(text.encode("utf-8"), Loader=loader)), text


def test_layout_matches_pyyaml_for_plain_metadata(saved_rf):
    from mlem_lib import mlemfile

    meta = mlemfile.parse(Path(saved_rf + ".mlem").read_bytes())
    data = meta.model_dump(mode="json", exclude_none=True, by_alias=True)
    ours = yamltext.dump(data)
    theirs = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**9)
    # the same lines wherever PyYAML writes a string bare
    assert yaml.safe_load(ours) == yaml.safe_load(theirs)
    assert sum(a == b for a, b in zip(ours.splitlines(), theirs.splitlines(), strict=False)) \
        >= 0.9 * len(theirs.splitlines())


def test_non_json_values_are_refused():
    with pytest.raises(TypeError, match="set"):
        yamltext.dump({"a": {1, 2}})
    with pytest.raises(TypeError, match="keys must be strings"):
        yamltext.dump({1: "a"})
