"""Issue 13, batch output: input columns kept beside the predictions, class-label column
names, compressed and JSON outputs, and dict-returning models merged across batches."""

from __future__ import annotations

import bz2
import gzip
import json

import numpy as np
import pandas as pd
import pytest

import mlem_lib.api as mlem
from mlem_lib.cli import main


@pytest.fixture
def iris_with_ids(iris, tmp_path):
    frame = iris[0].copy()
    frame.insert(0, "id", [f"row-{i}" for i in range(len(frame))])
    path = tmp_path / "iris_ids.csv"
    frame.to_csv(path, index=False)
    return frame, str(path)


def test_keep_columns_and_with_input(fidelity_models, iris_with_ids, tmp_path, capsys):
    entry = fidelity_models["lightgbm"]
    frame, path = iris_with_ids
    features = frame.drop(columns=["id"])
    out = tmp_path / "preds.csv"
    assert main(["apply", entry["path"], path, "--keep-columns", "id", "-o", str(out),
                 "--batch-size", "40"]) == 0
    written = pd.read_csv(out)
    assert list(written.columns) == ["id", "prediction"]
    assert written["id"].tolist() == frame["id"].tolist()
    assert written["prediction"].tolist() == entry["model"].predict(features).tolist()

    out = tmp_path / "all.parquet"
    assert main(["apply", entry["path"], path, "--with-input", "-o", str(out)]) == 0
    written = pd.read_parquet(out)
    assert list(written.columns) == [*frame.columns, "prediction"]
    pd.testing.assert_frame_equal(written[frame.columns], frame)

    assert main(["apply", entry["path"], path, "--keep-columns", "ID"]) == 1
    assert "no column 'ID'" in capsys.readouterr().err
    kept = mlem.apply(entry["path"], path, keep_columns=["id"])
    assert kept["id"].tolist() == frame["id"].tolist()


def test_predict_proba_columns_are_named_after_the_class_labels(fidelity_models,
                                                                iris_with_ids, tmp_path):
    entry = fidelity_models["lightgbm"]
    frame, path = iris_with_ids
    out = tmp_path / "proba.csv"
    assert main(["apply", entry["path"], path, "-m", "predict_proba", "--keep-columns", "id",
                 "-o", str(out), "--batch-size", "33"]) == 0
    written = pd.read_csv(out)
    assert list(written.columns) == ["id", "proba_setosa", "proba_versicolor",
                                     "proba_virginica"]
    np.testing.assert_allclose(written.iloc[:, 1:].to_numpy(),
                               entry["model"].predict_proba(frame.drop(columns=["id"])))
    numbered = fidelity_models["xgboost"]  # integer labels 0, 1, 2
    out = tmp_path / "xgb.parquet"
    assert main(["apply", numbered["path"], path, "-m", "predict_proba", "--keep-columns",
                 "id", "-o", str(out)]) == 0
    assert list(pd.read_parquet(out).columns) == ["id", "proba_0", "proba_1", "proba_2"]


@pytest.mark.parametrize("name", ["preds.csv.gz", "preds.jsonl.bz2", "preds.json",
                                  "preds.json.gz"])
def test_compressed_and_json_outputs(name, fidelity_models, iris, tmp_path):
    entry = fidelity_models["function"]
    X = iris[0]
    out = tmp_path / name
    assert main(["apply", entry["path"], "-q", str(_csv(X, tmp_path)), "-o", str(out),
                 "--batch-size", "64"]) == 0
    opener = {"gz": gzip.open, "bz2": bz2.open}.get(name.rsplit(".", 1)[-1], open)
    with opener(out, "rt") as f:
        if ".jsonl" in name:
            rows = [json.loads(line) for line in f]
        elif ".json" in name:
            rows = json.load(f)
        else:
            rows = pd.read_csv(f).to_dict("records")
    expected = entry["model"](X).tolist()
    assert [r["prediction"] for r in rows] == pytest.approx(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.csv", name])


def _csv(frame: pd.DataFrame, folder) -> str:
    path = folder / "in.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_dict_returning_model_merges_its_batches(fidelity_models, iris, tmp_path, capsys):
    entry = fidelity_models["dict_function"]
    X = pd.concat([iris[0], iris[0].head(50)], ignore_index=True)  # 200 rows
    path = _csv(X, tmp_path)
    expected = entry["model"](X)
    got = mlem.apply(entry["path"], path, batch_size=50)
    assert set(got) == {"label", "score"}
    assert got["label"].tolist() == expected["label"].tolist()
    assert got["score"].tolist() == pytest.approx(expected["score"].tolist())

    assert main(["apply", entry["path"], path, "--batch-size", "50"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["label"]) == 200 and len(printed["score"]) == 200
    out = tmp_path / "dict.csv"
    assert main(["apply", entry["path"], path, "--batch-size", "50", "-o", str(out)]) == 0
    assert "wrote 200 predictions" in capsys.readouterr().out
    written = pd.read_csv(out)
    assert list(written.columns) == ["label", "score"] and len(written) == 200
    assert written["score"].tolist() == pytest.approx(expected["score"].tolist())
