"""schemathesis against served models of three kinds (DataFrame, ndarray, list of strings),
bounded in examples and time: no response >= 500, and no ``null`` where the model returned a
float (issue 12, "How it is checked"). schemathesis runs from its own side venv
(scripts/schemathesis-venv.sh, created by scripts/test.sh)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, skip_or_fail

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 25
MAX_SECONDS = 90


def lengths(texts: list[str]) -> list[float]:
    return [len(t) / 2 for t in texts]


@pytest.fixture(scope="module")
def schemathesis_bin() -> Path:
    root = Path(os.environ.get("SCHEMATHESIS_VENV") or REPO_ROOT / ".venv-schemathesis")
    binary = root / "bin" / "schemathesis"
    if not binary.exists():
        skip_or_fail("schemathesis side venv missing: run scripts/schemathesis-venv.sh "
                     "(or set SCHEMATHESIS_VENV)")
    return binary


def _fuzz(binary: Path, url: str, report: Path) -> list[dict]:
    out = subprocess.run(
        [str(binary), "run", f"{url}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_SECONDS), "--seed", "12",
         "--workers", "1", "--continue-on-failure", "--report", "har",
         "--report-har-path", str(report), "--no-color"],
        capture_output=True, text=True, timeout=MAX_SECONDS * 3,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"})
    assert report.exists(), out.stdout[-3000:] + out.stderr[-3000:]
    entries = json.loads(report.read_text())["log"]["entries"]
    assert entries, out.stdout[-3000:]
    return entries


@pytest.mark.parametrize("kind", ["dataframe", "ndarray", "list-of-strings"])
def test_fuzzed_requests_never_get_a_5xx_or_a_null_float(kind, schemathesis_bin, start_server,
                                                         saved_lr, saved_kinds, tmp_path):
    import mlem_lib.api as mlem

    if kind == "dataframe":
        model = saved_lr
    elif kind == "ndarray":
        model = saved_kinds["ndarray"]
    else:
        model = str(tmp_path / "lengths")
        mlem.save(lengths, model, sample_data=["a", "bb"])
    server = start_server(model)
    entries = _fuzz(schemathesis_bin, server.url, tmp_path / "report.har")
    statuses = [e["response"]["status"] for e in entries]
    errors = [(e["request"]["method"], e["request"]["url"], e["response"]["status"],
               e["response"]["content"].get("text", "")[:300])
              for e in entries if e["response"]["status"] >= 500]
    assert not errors, errors[:5]
    posts = [e for e in entries if e["request"]["method"] == "POST"
             and e["response"]["status"] == 200
             and "json" in e["response"]["content"].get("mimeType", "")]
    nulls = [e["response"]["content"].get("text", "")[:300] for e in posts
             if "null" in e["response"]["content"].get("text", "")]
    assert not nulls, nulls[:5]
    assert len(statuses) >= 20, f"only {len(statuses)} requests were sent"
