"""One-line CLI errors everywhere (issue 12, item 16)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

MLEM = [sys.executable, "-m", "mlem_lib.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLEM, *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT)


@pytest.mark.parametrize("where", ["first", "after-command", "last"])
def test_traceback_flag_is_accepted_anywhere(tmp_path, where):
    missing = str(tmp_path / "nothing")
    argv = {"first": ["--traceback", "show", missing],
            "after-command": ["show", "--traceback", missing],
            "last": ["show", missing, "--traceback"]}[where]
    out = run(*argv)
    assert out.returncode != 0
    assert "Traceback" in out.stderr and "ObjectNotFoundError" in out.stderr
    assert "unrecognized arguments" not in out.stderr


def test_without_traceback_flag_errors_are_one_line(tmp_path):
    out = run("show", str(tmp_path / "nothing"))
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1


def test_show_into_a_closed_pipe_ends_quietly(saved_lr):
    """``mlem show X | head``: the reader goes away before we write."""
    proc = subprocess.Popen([*MLEM, "show", saved_lr], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO_ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `head` exiting before mlem writes
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert err == ""
    assert code == 141


def test_show_piped_into_head(saved_lr):
    out = subprocess.run(f"{sys.executable} -m mlem_lib.cli show {saved_lr} --json | head -1",
                         shell=True, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert out.stdout.strip() == "{"
    assert "Traceback" not in out.stderr


def _bad_inputs(folder, X) -> dict[str, tuple[str, list[str]]]:
    """name -> (file, substrings the one-line error must contain)."""
    import json

    df = X.head(10).copy()
    out: dict[str, tuple[str, list[str]]] = {}

    t = df.astype(object)
    t.iloc[6, 2] = "abc"
    t.to_csv(folder / "str_in_float.csv", index=False)
    out["csv-string"] = ("str_in_float.csv", ["row 7", "petal_length", "'abc'"])

    with open(folder / "bad.jsonl", "w") as f:
        for i, r in enumerate(df.to_dict("records")):
            if i == 3:
                r["sepal_width"] = "x"
            f.write(json.dumps(r) + "\n")
    out["jsonl-string"] = ("bad.jsonl", ["row 4", "sepal_width", "'x'"])

    t = df.copy()
    t["sepal_width"] = t["sepal_width"].astype(str)
    t.iloc[2, 1] = "zz"
    t.to_parquet(folder / "str_col.parquet")
    out["parquet-string"] = ("str_col.parquet", ["row 3", "sepal_width", "'zz'"])

    (folder / "ragged.csv").write_text(
        ",".join(df.columns) + "\n1,2,3,4\n1,2,3,4,5\n")
    out["csv-ragged"] = ("ragged.csv", ["ragged.csv", "line 3"])

    df.drop(columns=["petal_width"]).to_csv(folder / "missing.csv", index=False)
    out["csv-missing-column"] = ("missing.csv", ["missing.csv", "petal_width"])
    return out


CASES = ["csv-string", "jsonl-string", "parquet-string", "csv-ragged",
         "csv-missing-column"]


@pytest.mark.parametrize("case", CASES)
def test_apply_over_a_bad_row_names_the_row_and_column(saved_lr, iris, tmp_path, case):
    name, needles = _bad_inputs(tmp_path, iris[0])[case]
    out = run("apply", saved_lr, str(tmp_path / name), "-q", "-o", str(tmp_path / "out.csv"))
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr
    assert not (tmp_path / "out.csv").exists()


def test_model_exception_during_apply_is_one_line_with_its_message(saved_kinds, tmp_path):
    import json

    with open(tmp_path / "in.jsonl", "w") as f:
        for v in [1.0, -2.0]:
            f.write(json.dumps(v) + "\n")
    out = run("apply", saved_kinds["boom"], str(tmp_path / "in.jsonl"), "-q")
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "ValueError" in out.stderr and "negative input" in out.stderr
    assert "rows 1-2" in out.stderr


@pytest.mark.parametrize("content", ["", "sepal_length,sepal_width,petal_length,petal_width\n"],
                         ids=["empty", "header-only"])
def test_apply_over_an_input_without_rows_says_so(saved_lr, tmp_path, content):
    """Documented in `mlem apply --help`: an empty output and a note, never a silent []."""
    import pandas as pd

    (tmp_path / "in.csv").write_text(content)
    out = run("apply", saved_lr, str(tmp_path / "in.csv"), "-q", "-o",
              str(tmp_path / "out.parquet"))
    assert out.returncode == 0, out.stderr
    assert "has no rows" in out.stderr and "header" in out.stderr
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 0
    printed = run("apply", saved_lr, str(tmp_path / "in.csv"), "-q")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == "[]"
    assert "has no rows" in printed.stderr and len(printed.stderr.strip().splitlines()) == 1
    assert "without rows" in run("apply", "--help").stdout
