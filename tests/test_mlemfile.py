"""Reading ``.mlem`` files defensively: alias bombs, size caps, short errors (issue 12,
item 3)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import mlem_lib.api as mlem
from mlem_lib import mlemfile
from mlem_lib.errors import MetadataError, MetadataTooLargeError

MLEM = [sys.executable, "-m", "mlem_lib.cli"]


def alias_bomb(field: str = "owner", levels: int = 9) -> str:
    """About 600 bytes of YAML that expand to 9**levels strings."""
    lines = ["object_type: model", "model_type:", "  type: callable", "  methods: {}",
             "x0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    for i in range(1, levels):
        lines.append(f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append(f"{field}: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly_by_show_json(tmp_path):
    (tmp_path / "bomb.mlem").write_text(alias_bomb())
    started = time.monotonic()
    out = subprocess.run([*MLEM, "show", str(tmp_path / "bomb"), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 30
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1
    assert "expands" in out.stderr and len(out.stderr) < 400


@pytest.mark.parametrize("field", ["owner", "labels", "description"])
def test_alias_bomb_is_a_metadata_too_large_error(field):
    started = time.monotonic()
    with pytest.raises(MetadataTooLargeError) as err:
        mlemfile.parse(alias_bomb(field))
    assert time.monotonic() - started < 5
    assert len(str(err.value)) < 300


def test_small_legitimate_aliases_still_load(saved_lr, tmp_path):
    """PyYAML writes anchors for shared objects; a file with a few of them is fine."""
    import yaml

    doc = yaml.safe_load(Path(saved_lr + ".mlem").read_text())
    shared = doc["model_type"]["methods"]["predict"]["args"][0]["type_"]
    doc["model_type"]["methods"]["predict_proba"]["args"][0]["type_"] = shared
    text = yaml.safe_dump(doc)
    assert "&id" in text
    assert mlemfile.parse(text).model_type.type == "sklearn"


def test_recursive_alias_is_a_clear_error():
    text = "object_type: model\nmodel_type: {type: callable}\nowner: &a [1, *a]\n"
    with pytest.raises(MetadataError, match="refers to itself"):
        mlemfile.parse(text)


def test_deep_nesting_is_refused():
    text = "object_type: model\nmodel_type: {type: callable}\nowner: " + "[" * 500 + \
        "]" * 500 + "\n"
    with pytest.raises(MetadataTooLargeError, match="nested"):
        mlemfile.parse(text)


def test_oversized_metadata_file_is_refused_without_reading_it(tmp_path):
    big = tmp_path / "big.mlem"
    with open(big, "wb") as f:
        f.truncate(mlemfile.MAX_METADATA_BYTES + 1)  # sparse: costs no disk
    started = time.monotonic()
    with pytest.raises(MetadataTooLargeError, match="larger than"):
        mlem.load_meta(str(tmp_path / "big"))
    assert time.monotonic() - started < 2
    with pytest.raises(MetadataTooLargeError):
        mlemfile.parse(b" " * (mlemfile.MAX_METADATA_BYTES + 1))
