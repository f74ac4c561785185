"""Metrics and plots registered with a version: committed next to the .mlem, named in the
tag's annotation, shown by `registry show NAME@v`, compared by `registry compare`, and
read from a second clone of a bare remote."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

import mlem_lib.api as mlem
from mlem_lib.cli import main
from mlem_lib.errors import RegistryError
from tests._fixtures.registry import git


def _png(path: Path) -> bytes:
    """A valid 1x1 PNG (what a plotting library writes, in miniature)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    body = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))
    path.write_bytes(body)
    return body


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _lr(iris, c: float) -> LogisticRegression:
    X, y = iris
    return LogisticRegression(C=c, max_iter=300).fit(X, y)


def test_metrics_and_plots_travel_with_the_version(registry_repo, save_model, iris, tmp_path,
                                                   capsys):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(registry_repo, "remote", "add", "origin", str(origin))
    git(registry_repo, "push", "-q", "-u", "origin", "main")

    # what a training script leaves in the work tree (untracked: not "unrelated changes")
    (registry_repo / "metrics.json").write_text(json.dumps(
        {"accuracy": 0.9, "test": {"f1": 0.8}, "note": "baseline"}))
    (registry_repo / "plots").mkdir()
    roc = _png(registry_repo / "plots" / "roc.png")
    save_model(_lr(iris, 1.0))
    code, _, err = _cli(capsys, "registry", "register", "models/rf", "--version", "v1.0.0",
                        "--metrics", str(registry_repo / "metrics.json"), "--plots",
                        str(registry_repo / "plots"), "--push", "--repo", str(registry_repo))
    assert code == 0, err
    assert json.loads((registry_repo / "models/rf.metrics.json").read_text())["accuracy"] == 0.9
    assert (registry_repo / "models/rf.plots/roc.png").read_bytes() == roc
    message = git(registry_repo, "tag", "-l", "--format=%(contents)", "rf@v1.0.0")
    assert "metrics: models/rf.metrics.json" in message and "plots: models/rf.plots" in message

    (registry_repo / "metrics.json").unlink()  # the next run's metrics come as a mapping
    shutil.rmtree(registry_repo / "plots")
    save_model(_lr(iris, 0.1))
    mlem.register("models/rf", version="v1.1.0", repo=str(registry_repo), push_git=True,
                  metrics={"accuracy": 0.95, "test": {"f1": 0.85}, "latency_ms": 3})

    # a second clone reads both versions' records from git alone
    two = tmp_path / "two"
    git(tmp_path, "clone", "-q", str(origin), str(two))
    old = mlem.version_records("rf@v1.0.0", repo=str(two))
    assert old.metrics == {"accuracy": 0.9, "note": "baseline", "test": {"f1": 0.8}}
    assert old.plots == ["models/rf.plots/roc.png"]
    assert old.tagger and "tester@example.com" in old.tagger
    assert mlem.version_records("rf@latest", repo=str(two)).plots == []

    code, out, err = _cli(capsys, "registry", "show", "rf@v1.0.0", "--repo", str(two))
    assert code == 0, err
    assert "test.f1" in out and "0.8" in out and "models/rf.plots/roc.png" in out

    deltas = {d.metric: d for d in mlem.compare_versions("rf@v1.0.0", "rf@v1.1.0",
                                                         repo=str(two))}
    assert deltas["accuracy"].delta == pytest.approx(0.05)
    assert deltas["test.f1"].delta == pytest.approx(0.05)
    assert deltas["note"].delta is None and deltas["note"].new is None
    assert deltas["latency_ms"].old is None and deltas["latency_ms"].new == 3
    code, out, err = _cli(capsys, "registry", "compare", "rf@v1.0.0", "rf@v1.1.0", "--repo",
                          str(origin))  # also through the bare remote
    assert code == 0, err
    assert "+0.05" in out


def test_bad_metrics_are_refused_before_anything_changes(registry_repo, save_model, iris,
                                                        tmp_path, capsys):
    save_model(_lr(iris, 1.0))
    head = git(registry_repo, "rev-parse", "HEAD")
    (tmp_path / "m.json").write_text("[1, 2]")
    code, _, err = _cli(capsys, "registry", "register", "models/rf", "--metrics",
                        str(tmp_path / "m.json"), "--repo", str(registry_repo))
    assert code == 1 and "must hold a JSON object" in err and err.count("\n") == 1
    with pytest.raises(RegistryError, match="is nan"):
        mlem.register("models/rf", repo=str(registry_repo), metrics={"loss": float("nan")})
    with pytest.raises(RegistryError, match="no plot file or folder"):
        mlem.register("models/rf", repo=str(registry_repo), plots=str(tmp_path / "none"))
    assert git(registry_repo, "rev-parse", "HEAD") == head
    assert git(registry_repo, "tag") == ""
    assert not (registry_repo / "models/rf.metrics.json").exists()
