"""Tests of ``mlem apply`` and ``mlem apply-remote`` (mlem_lib/commands/apply.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mlem_lib.cli import main


def test_help_explains_formats_and_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["apply", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for word in (".parquet", ".jsonl", ".npy", "s3://", "--batch-size", "250,000", "examples"):
        assert word in out
    with pytest.raises(SystemExit):
        main(["apply-remote", "--help"])
    assert "--auth-token" in capsys.readouterr().out


def test_apply_without_output_prints_the_predictions_as_json(saved_lr, iris, iris_lr,
                                                             iris_files, capsys):
    assert main(["apply", saved_lr, iris_files["csv"], "--batch-size", "7"]) == 0
    assert json.loads(capsys.readouterr().out) == iris_lr.predict(iris[0]).tolist()


def test_apply_writes_the_output_and_says_so(saved_lr, iris, iris_lr, iris_files, tmp_path,
                                             capsys):
    out = tmp_path / "preds.parquet"
    code = main(["apply", saved_lr, iris_files["jsonl"], "-m", "predict_proba", "-o", str(out),
                 "--batch-size", "64", "--quiet"])
    assert code == 0
    assert capsys.readouterr().out.startswith(f"wrote 150 predictions (predict_proba) to {out}")
    np.testing.assert_allclose(pd.read_parquet(out).to_numpy(), iris_lr.predict_proba(iris[0]),
                               rtol=1e-6)


def test_schema_error_is_one_line_and_exit_1(saved_lr, iris, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    iris[0].drop(columns=["sepal_width"]).to_csv(bad, index=False)
    assert main(["apply", saved_lr, str(bad), "-o", str(tmp_path / "preds.csv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "sepal_width" in err and err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["bad.csv"]


def test_bad_batch_size_and_output_are_refused(saved_lr, iris_files, tmp_path, capsys):
    assert main(["apply", saved_lr, iris_files["csv"], "--batch-size", "0"]) == 1
    assert "batch size" in capsys.readouterr().err
    assert main(["apply", saved_lr, iris_files["csv"], "-o", str(tmp_path / "p.xlsx")]) == 1
    assert ".parquet" in capsys.readouterr().err


def _run_on_a_terminal(args: list[str]) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; returns (exit code, what it showed)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "mlem_lib.cli", *args],
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        shown += data
    proc.communicate(timeout=120)
    os.close(master)
    return proc.returncode, shown.decode(errors="replace")


def test_progress_bar_on_a_terminal_unless_quiet(saved_lr, iris_files, tmp_path):
    out = str(tmp_path / "preds.csv")
    code, shown = _run_on_a_terminal(["apply", saved_lr, iris_files["npy"], "-o", out,
                                      "--batch-size", "10"])
    assert code == 0
    assert "150/150" in shown and "rows" in shown
    code, shown = _run_on_a_terminal(["apply", saved_lr, iris_files["npy"], "-o", out,
                                      "--batch-size", "10", "--quiet"])
    assert code == 0 and shown == ""


def test_apply_remote_cli(served_lr, iris, iris_lr, iris_files, tmp_path, capsys):
    out = tmp_path / "remote.csv"
    code = main(["apply-remote", served_lr, iris_files["parquet"], "-o", str(out),
                 "--batch-size", "50"])
    assert code == 0
    assert "wrote 150 predictions" in capsys.readouterr().out
    np.testing.assert_array_equal(pd.read_csv(out)["prediction"], iris_lr.predict(iris[0]))


def test_apply_remote_unreachable_server_is_one_line(iris_files, capsys):
    from tests.conftest import free_port

    code = main(["apply-remote", f"http://127.0.0.1:{free_port()}", iris_files["csv"]])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the model server") and err.count("\n") == 1
