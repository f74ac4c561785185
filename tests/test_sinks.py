"""Tests of mlem_lib.sinks: atomic, chunked writers of predictions."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from mlem_lib.errors import ApplyError
from mlem_lib.sinks import as_frame, concat, open_sink


def _read(path: str) -> pd.DataFrame:
    ext = path.rsplit(".", 1)[1]
    if ext == "npy":
        arr = np.load(path)
        return pd.DataFrame(arr.reshape(len(arr), -1))
    return {"csv": pd.read_csv, "parquet": pd.read_parquet,
            "jsonl": lambda p: pd.read_json(p, lines=True)}[ext](path)


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl", "npy"])
def test_chunks_are_appended_in_order_and_moved_into_place_on_close(ext, tmp_path):
    path = str(tmp_path / f"out.{ext}")
    sink = open_sink(path)
    for start in range(0, 1000, 300):
        sink.write(np.arange(start, min(1000, start + 300)))
        assert not os.path.exists(path)  # nothing visible before close
    assert sink.close() == path
    assert _read(path).iloc[:, 0].tolist() == list(range(1000))
    assert os.listdir(tmp_path) == [f"out.{ext}"]


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl", "npy"])
def test_abort_keeps_the_previous_file(ext, tmp_path):
    path = tmp_path / f"out.{ext}"
    path.write_bytes(b"previous")
    sink = open_sink(str(path))
    sink.write(np.ones(10))
    sink.abort()
    sink.abort()
    assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl", "npy"])
def test_no_rows_still_gives_a_readable_file(ext, tmp_path):
    path = str(tmp_path / f"empty.{ext}")
    open_sink(path).close()
    if ext == "npy":
        assert np.load(path).shape == (0,)
    elif ext == "parquet":
        assert len(pd.read_parquet(path)) == 0
    else:
        assert os.path.getsize(path) == 0


def test_npy_keeps_2d_shape_and_dtype(tmp_path):
    path = str(tmp_path / "p.npy")
    sink = open_sink(path)
    sink.write(np.full((7, 3), 0.5, dtype=np.float32))
    sink.write(np.full((5, 3), 1.5, dtype=np.float32))
    sink.close()
    arr = np.load(path)
    assert arr.shape == (12, 3) and arr.dtype == np.float32
    assert arr[6, 0] == 0.5 and arr[7, 0] == 1.5


def test_npy_refuses_a_shape_change(tmp_path):
    sink = open_sink(str(tmp_path / "p.npy"))
    sink.write(np.zeros((2, 3)))
    with pytest.raises(ApplyError, match="changed shape"):
        sink.write(np.zeros((2, 4)))
    sink.abort()
    assert os.listdir(tmp_path) == []


def test_remote_output_appears_only_on_close():
    import fsspec

    fs = fsspec.filesystem("memory")
    sink = open_sink("memory://sinks/preds.csv")
    sink.write(pd.DataFrame({"label": ["a", "b"]}))
    assert not fs.exists("/sinks/preds.csv")
    sink.close()
    assert fs.cat("/sinks/preds.csv") == b"label\na\nb\n"


def test_as_frame_names_columns():
    assert list(as_frame(np.zeros(3)).columns) == ["prediction"]
    assert list(as_frame(np.zeros((3, 2))).columns) == ["prediction_0", "prediction_1"]
    assert list(as_frame(pd.Series([1], name="y")).columns) == ["y"]
    assert list(as_frame([{"p": 1}]).columns) == ["p"]
    with pytest.raises(ApplyError, match=r"\.npy"):
        as_frame(np.zeros((2, 2, 2)))


def test_concat_keeps_the_kind_of_value():
    assert concat([np.array([1]), np.array([2, 3])]).tolist() == [1, 2, 3]
    frame = concat([pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [2]})])
    assert frame["a"].tolist() == [1, 2] and frame.index.tolist() == [0, 1]
    assert concat([]) == []
