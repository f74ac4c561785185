"""``mlem registry ...`` run through the real CLI entry point in real git/DVC repositories."""

from __future__ import annotations

import json

import pytest
from sklearn.linear_model import LogisticRegression

from mlem_lib.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_register_assign_show_history_latest(registry_repo, save_model, iris, iris_lr,
                                             monkeypatch, capsys):
    monkeypatch.chdir(registry_repo)
    save_model(iris_lr, description="iris classifier")
    code, out, _ = _run(capsys, "registry", "register", "models/rf", "--bump-minor")
    assert code == 0
    assert out.startswith("registered rf v0.1.0 (tag rf@v0.1.0, commit ")

    save_model(LogisticRegression(C=0.1, max_iter=500).fit(*iris), description="retrained")
    code, out, _ = _run(capsys, "registry", "register", "models/rf.mlem", "--json")
    assert code == 0 and json.loads(out)["version"] == "v0.1.1"

    code, out, _ = _run(capsys, "registry", "assign", "rf", "--version", "v0.1.0",
                        "--stage", "prod")
    assert (code, out.strip()) == (0, "rf v0.1.0 is in stage prod (tag rf#prod#1)")

    code, out, _ = _run(capsys, "registry", "show")
    lines = out.splitlines()
    assert lines[0].split() == ["name", "latest", "#prod", "description"]
    assert lines[2].split() == ["rf", "v0.1.1", "v0.1.0", "retrained"]

    code, out, _ = _run(capsys, "registry", "show", "rf")
    assert out.startswith("Model rf  (latest v0.1.1, at models/rf)")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[5:]}
    assert rows["v0.1.0"][1] == "prod" and len(rows["v0.1.1"]) == 3  # v0.1.1: no stage

    code, out, _ = _run(capsys, "registry", "history", "rf")
    events = [line.split()[1:4] for line in out.splitlines()[2:]]
    assert events[0] == ["assignment", "v0.1.0", "prod"]
    assert sorted(e[:2] for e in events[1:]) == [["registration", "v0.1.0"],
                                                 ["registration", "v0.1.1"]]

    assert _run(capsys, "registry", "latest", "rf")[1].strip() == "v0.1.1"
    assert _run(capsys, "registry", "latest", "rf", "--stage", "prod")[1].strip() == "v0.1.0"

    code, out, _ = _run(capsys, "show", "rf#prod")  # the core `mlem show` reads references
    assert code == 0 and out.startswith("Model rf#prod") and "iris classifier" in out


def test_errors_are_one_line_and_exit_1(registry_repo, save_model, iris_lr, capsys):
    repo = str(registry_repo)
    code, _, err = _run(capsys, "registry", "latest", "nope", "--repo", repo)
    assert code == 1 and err == "error: no model named 'nope' in the registry\n"

    save_model(iris_lr)
    (registry_repo / "scratch.txt").write_text("x")
    code, _, err = _run(capsys, "registry", "register", "models/rf", "--repo", repo)
    assert code == 1 and err.startswith("error: uncommitted changes") and "scratch.txt" in err
    (registry_repo / "scratch.txt").unlink()

    assert _run(capsys, "registry", "register", "models/rf", "--repo", repo)[0] == 0
    code, _, err = _run(capsys, "registry", "latest", "rf", "--stage", "dev", "--repo", repo)
    assert code == 1 and err == "error: no version of 'rf' is in stage 'dev'\n"
    code, _, err = _run(capsys, "registry", "register", "models/rf", "--repo", repo)
    assert code == 1 and "already registered as v0.0.1" in err
    code, _, err = _run(capsys, "registry", "assign", "rf", "--stage", "prod", "--version",
                        "v7.0.0", "--repo", repo)
    assert code == 1 and "no version v7.0.0" in err


def test_version_and_bump_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["registry", "register", "models/rf", "--version", "v1.0.0", "--bump-minor"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_help_explains_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["registry", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    for word in ("register", "assign", "show", "history", "latest", "NAME#STAGE#N"):
        assert word in out
