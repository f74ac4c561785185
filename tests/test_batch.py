"""Tests of mlem_lib.batch: streaming apply over files, locally and against a server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlem_lib.api as mlem
from mlem_lib.batch import (
    DEFAULT_BATCH_SIZE,
    ApplySummary,
    apply_file,
    apply_remote,
    check_input,
)
from mlem_lib.errors import ApplyError, MethodNotFoundError, ObjectNotFoundError, SchemaError
from mlem_lib.runner import LoadedModel

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class CountingModel:
    """Echoes ``sepal_length`` (so row order is visible) and counts its calls."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise RuntimeError("model broke")
        return df["sepal_length"].to_numpy()


def _echo(iris: Any, fail_on_call: int | None = None) -> tuple[LoadedModel, CountingModel]:
    model = CountingModel(fail_on_call)
    loaded = LoadedModel.from_object(model, sample_data=iris[0])
    model.calls = 0  # metadata inference called it on the sample
    return loaded, model


def _files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "npy", "mlem", "mlem-bare"])
def test_every_input_format_gives_the_direct_predictions(fmt, iris, iris_lr, saved_lr,
                                                         iris_files):
    result = mlem.apply(saved_lr, iris_files[fmt], batch_size=32)
    np.testing.assert_array_equal(result, iris_lr.predict(iris[0]))


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl", "npy"])
def test_every_output_format_holds_the_predictions_in_order(ext, iris, iris_lr, saved_lr,
                                                            iris_files, tmp_path):
    out = tmp_path / f"preds.{ext}"
    summary = mlem.apply(saved_lr, iris_files["parquet"], method="predict_proba",
                         output=str(out), batch_size=33)
    assert isinstance(summary, ApplySummary)
    assert (summary.rows, summary.output, summary.method) == (150, str(out), "predict_proba")
    expected = iris_lr.predict_proba(iris[0])
    if ext == "npy":
        got = np.load(out)
    else:
        frame = {"csv": pd.read_csv, "parquet": pd.read_parquet,
                 "jsonl": lambda p: pd.read_json(p, lines=True)}[ext](out)
        assert list(frame.columns) == ["proba_0", "proba_1", "proba_2"]  # class labels
        got = frame.to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert _files_in(tmp_path) == [out.name]  # no temporary file left behind


@pytest.mark.parametrize("batch_size", [1, 7, 40, 149, 150, 151, 10_000])
@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "npy"])
def test_chunk_sizes_that_do_not_divide_the_rows_keep_every_row_in_order(
        fmt, batch_size, iris, iris_files, tmp_path):
    loaded, model = _echo(iris)
    out = tmp_path / "echo.parquet"
    summary = apply_file(loaded, iris_files[fmt], output=str(out), batch_size=batch_size)
    expected = iris[0]["sepal_length"].to_numpy()
    np.testing.assert_array_equal(pd.read_parquet(out)["prediction"].to_numpy(), expected)
    assert summary.rows == 150
    assert summary.batches == model.calls
    assert model.calls >= -(-150 // batch_size)


def test_missing_column_fails_before_any_prediction(iris, tmp_path):
    loaded, model = _echo(iris)
    bad = tmp_path / "bad.csv"
    iris[0].drop(columns=["petal_width"]).to_csv(bad, index=False)
    with pytest.raises(SchemaError, match="petal_width") as err:
        apply_file(loaded, str(bad), output=str(tmp_path / "out.csv"))
    assert err.value.field == "petal_width"
    assert model.calls == 0
    assert _files_in(tmp_path) == ["bad.csv"]


def test_wrong_dtype_names_the_column(iris, saved_lr, tmp_path):
    bad = tmp_path / "bad.parquet"
    frame = iris[0].astype({"sepal_width": str})
    frame.to_parquet(bad, index=False)
    with pytest.raises(SchemaError, match="sepal_width") as err:
        mlem.apply(saved_lr, str(bad))
    assert err.value.field == "sepal_width"


def test_bad_value_in_a_later_chunk_leaves_the_previous_output_intact(iris, tmp_path):
    loaded, model = _echo(iris)
    frame = iris[0].astype({"petal_length": object})
    frame.loc[120, "petal_length"] = "oops"
    data = tmp_path / "late.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    out.write_text("previous run\n")
    with pytest.raises(SchemaError, match="petal_length"):
        apply_file(loaded, str(data), output=str(out), batch_size=50)
    assert model.calls == 2  # the first two chunks were fine
    assert out.read_text() == "previous run\n"
    assert _files_in(tmp_path) == ["late.csv", "preds.csv"]


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl", "npy"])
def test_a_model_failure_midway_leaves_no_partial_output(ext, iris, iris_files, tmp_path):
    loaded, _ = _echo(iris, fail_on_call=3)
    out = tmp_path / f"preds.{ext}"
    with pytest.raises(RuntimeError, match="model broke"):
        apply_file(loaded, iris_files["csv"], output=str(out), batch_size=20)
    assert _files_in(tmp_path) == []


def test_check_input_validates_without_predicting(iris, iris_files, tmp_path):
    loaded, model = _echo(iris)
    check_input(loaded, iris_files["jsonl"])
    bad = tmp_path / "bad.jsonl"
    iris[0].rename(columns={"sepal_width": "width"}).to_json(bad, orient="records",
                                                              lines=True)
    with pytest.raises(SchemaError, match="sepal_width"):
        check_input(loaded, str(bad))
    assert model.calls == 0


def test_ndarray_input_for_a_dataframe_schema_needs_the_same_width(saved_lr, tmp_path):
    bad = tmp_path / "narrow.npy"
    np.save(bad, np.zeros((10, 3)))
    with pytest.raises(SchemaError, match="expected 4 columns"):
        mlem.apply(saved_lr, str(bad))


def test_method_and_format_errors_are_clear(saved_lr, iris_files, tmp_path):
    with pytest.raises(MethodNotFoundError, match="transform"):
        mlem.apply(saved_lr, iris_files["csv"], method="transform")
    with pytest.raises(ApplyError, match=r"\.csv, \.parquet"):
        mlem.apply(saved_lr, iris_files["csv"], output=str(tmp_path / "preds.txt"))
    text = tmp_path / "data.txt"
    text.write_text("1,2\n")
    with pytest.raises(ApplyError, match="cannot tell the format"):
        mlem.apply(saved_lr, str(text))
    with pytest.raises(ObjectNotFoundError, match=r"missing\.parquet"):
        mlem.apply(saved_lr, str(tmp_path / "missing.parquet"))
    with pytest.raises(ApplyError, match="batch size"):
        mlem.apply(saved_lr, iris_files["csv"], batch_size=0)
    assert not (tmp_path / "preds.txt").exists()


def test_a_method_that_changes_the_row_count_is_refused(iris, iris_files):
    loaded = LoadedModel.from_object(lambda df: df.head(1)["sepal_length"].to_numpy(),
                                     sample_data=iris[0])
    with pytest.raises(ApplyError, match="1 rows for a batch of 50"):
        apply_file(loaded, iris_files["csv"], batch_size=50)


def test_gzipped_csv_input(iris, iris_lr, saved_lr, tmp_path):
    data = tmp_path / "iris.csv.gz"
    iris[0].to_csv(data, index=False, compression="gzip")
    np.testing.assert_array_equal(mlem.apply(saved_lr, str(data), batch_size=64),
                                  iris_lr.predict(iris[0]))


def test_csv_written_with_its_index_is_read_without_it(iris, iris_lr, saved_lr, tmp_path):
    data = tmp_path / "indexed.csv"
    iris[0].to_csv(data)  # first column is the unnamed index
    np.testing.assert_array_equal(mlem.apply(saved_lr, str(data)), iris_lr.predict(iris[0]))


def test_empty_input_gives_an_empty_output(iris, saved_lr, tmp_path):
    data = tmp_path / "empty.csv"
    iris[0].head(0).to_csv(data, index=False)
    out = tmp_path / "preds.parquet"
    summary = mlem.apply(saved_lr, str(data), output=str(out))
    assert summary.rows == 0
    assert len(pd.read_parquet(out)) == 0


def test_rerun_replaces_the_output(iris, iris_lr, saved_lr, iris_files, tmp_path):
    out = tmp_path / "preds.csv"
    for _ in range(2):
        mlem.apply(saved_lr, iris_files["npy"], output=str(out))
    np.testing.assert_array_equal(pd.read_csv(out)["prediction"], iris_lr.predict(iris[0]))


def test_no_progress_bar_when_stderr_is_not_a_terminal(saved_lr, iris_files, capfd):
    mlem.apply(saved_lr, iris_files["parquet"], quiet=False, batch_size=10)
    assert capfd.readouterr().err == ""


def test_default_batch_size_matches_the_cli_help():
    from mlem_lib.batch import DEFAULT_REMOTE_BATCH_SIZE
    from mlem_lib.commands import apply as command

    assert command.DEFAULT_BATCH_SIZE == DEFAULT_BATCH_SIZE
    assert command.DEFAULT_REMOTE_BATCH_SIZE == DEFAULT_REMOTE_BATCH_SIZE


def test_s3_input_and_output(iris, iris_lr, saved_lr, iris_files, moto_s3):
    import fsspec

    fs = fsspec.filesystem("s3")
    fs.put_file(iris_files["parquet"], f"{moto_s3}/in/iris.parquet")
    fs.put_file(iris_files["csv"], f"{moto_s3}/in/iris.csv")
    summary = mlem.apply(saved_lr, f"{moto_s3}/in/iris.csv", method="predict_proba",
                         output=f"{moto_s3}/out/preds.parquet", batch_size=64)
    assert summary.rows == 150
    with fs.open(f"{moto_s3}/out/preds.parquet", "rb") as f:
        got = pd.read_parquet(f).to_numpy()
    np.testing.assert_allclose(got, iris_lr.predict_proba(iris[0]), rtol=1e-6)
    in_memory = mlem.apply(saved_lr, f"{moto_s3}/in/iris.parquet", batch_size=50)
    np.testing.assert_array_equal(in_memory, iris_lr.predict(iris[0]))
    assert fs.ls(f"{moto_s3}/out") == [f"{moto_s3[5:]}/out/preds.parquet"]


def test_s3_output_is_not_created_when_the_run_fails(iris, iris_files, moto_s3):
    import fsspec

    loaded, _ = _echo(iris, fail_on_call=2)
    with pytest.raises(RuntimeError):
        apply_file(loaded, iris_files["csv"], output=f"{moto_s3}/failed/preds.csv",
                   batch_size=30)
    assert not fsspec.filesystem("s3").exists(f"{moto_s3}/failed/preds.csv")


# --- against a real server ------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "npy", "mlem"])
def test_apply_remote_over_every_format(fmt, iris, iris_lr, served_lr, iris_files):
    result = apply_remote(served_lr, iris_files[fmt], batch_size=64)
    np.testing.assert_array_equal(np.asarray(result), iris_lr.predict(iris[0]))


def test_apply_remote_writes_an_output_file(iris, iris_lr, served_lr, iris_files, tmp_path):
    out = tmp_path / "remote.parquet"
    summary = apply_remote(served_lr, iris_files["parquet"], method="predict_proba",
                           output=str(out), batch_size=1000)
    assert summary.rows == 150
    np.testing.assert_allclose(pd.read_parquet(out).to_numpy(),
                               iris_lr.predict_proba(iris[0]), rtol=1e-6)


def test_apply_remote_in_memory_data(iris, iris_lr, served_lr):
    np.testing.assert_array_equal(np.asarray(apply_remote(served_lr, iris[0], batch_size=70)),
                                  iris_lr.predict(iris[0]))


def test_apply_remote_schema_error_names_the_column(iris, served_lr, tmp_path):
    bad = tmp_path / "bad.csv"
    iris[0].drop(columns=["sepal_length"]).to_csv(bad, index=False)
    with pytest.raises(SchemaError, match="sepal_length"):
        apply_remote(served_lr, str(bad), output=str(tmp_path / "out.csv"))
    assert _files_in(tmp_path) == ["bad.csv"]


def test_apply_remote_unknown_method(served_lr, iris_files):
    with pytest.raises(MethodNotFoundError, match="transform"):
        apply_remote(served_lr, iris_files["csv"], method="transform")


def test_large_batches_use_a_bounded_number_of_rows(iris, tmp_path):
    # a 20 000-row Parquet file with big row groups: no chunk exceeds the batch size
    loaded, _ = _echo(iris)
    seen: list[int] = []
    inner = loaded.model.predict

    def spy(df: pd.DataFrame) -> np.ndarray:
        seen.append(len(df))
        return inner(df)

    loaded.model.predict = spy
    big = pd.concat([iris[0]] * 134, ignore_index=True).head(20_000)
    data = tmp_path / "big.parquet"
    big.to_parquet(data, index=False, row_group_size=20_000)
    result = apply_file(loaded, str(data), batch_size=3_000)
    assert max(seen) == 3_000 and sum(seen) == 20_000
    np.testing.assert_array_equal(result, big["sepal_length"].to_numpy())
    assert os.listdir(tmp_path) == ["big.parquet"]
