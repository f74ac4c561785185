"""Tests of mlem_lib.formats: chunked readers and partitions of batch inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlem_lib.errors import ApplyError, ArtifactIntegrityError
from mlem_lib.formats import Partition, open_source, output_format


def _rows(source, batch_size=5, part=None) -> list[float]:
    """The first column of every row the source yields, in order."""
    values: list[float] = []
    for chunk in source.chunks(batch_size, part):
        if isinstance(chunk, list):
            values += [row["a"] if isinstance(row, dict) else row[0] for row in chunk]
        elif hasattr(chunk, "iloc"):
            values += chunk.iloc[:, 0].tolist()
        else:
            values += np.asarray(chunk)[:, 0].tolist()
    return values


@pytest.fixture
def small(tmp_path) -> dict[str, str]:
    """12 rows with a distinct first column, in every format."""
    frame = pd.DataFrame({"a": np.arange(12, dtype=float) + 0.5, "b": np.arange(12) * 10})
    paths = {f: str(tmp_path / f"small.{f}") for f in ("csv", "parquet", "jsonl", "npy")}
    frame.to_csv(paths["csv"], index=False)
    frame.to_parquet(paths["parquet"], index=False, row_group_size=5)
    frame.to_json(paths["jsonl"], orient="records", lines=True)
    np.save(paths["npy"], frame.to_numpy(dtype=float))
    return paths


EXPECTED = [i + 0.5 for i in range(12)]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "npy"])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 13, 50])
def test_partitions_cover_every_row_once_in_order(fmt, n, small):
    source = open_source(small[fmt])
    parts = source.partitions(n)
    assert [p.index for p in parts] == list(range(len(parts)))
    assert 1 <= len(parts) <= n
    rows: list[float] = []
    for part in parts:
        rows += _rows(source, batch_size=2, part=part)
    assert rows == EXPECTED


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_byte_split_anywhere_loses_and_duplicates_no_line(fmt, small):
    import os

    source = open_source(small[fmt])
    size = os.path.getsize(small[fmt])
    for cut in range(size + 1):
        first = Partition(index=0, start=0, stop=cut, unit="bytes")
        second = Partition(index=1, start=cut, stop=size, unit="bytes")
        got = _rows(source, 4, first) + _rows(source, 4, second)
        assert got == EXPECTED, f"split at byte {cut}"


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "npy"])
@pytest.mark.parametrize("batch_size", [1, 5, 11, 12, 100])
def test_chunks_never_exceed_the_batch_size(fmt, batch_size, small):
    sizes = [len(c) for c in open_source(small[fmt]).chunks(batch_size)]
    assert sum(sizes) == 12 and max(sizes) <= batch_size


def test_parquet_partitions_follow_row_groups(small):
    parts = open_source(small["parquet"]).partitions(2)
    assert [(p.start, p.stop, p.unit) for p in parts] == [(0, 2, "row_groups"),
                                                           (2, 3, "row_groups")]


def test_remote_npy_is_streamed_like_a_local_one(small):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.put_file(small["npy"], "/formats/small.npy")  # Fortran order, as DataFrames give
    remote = open_source("memory://formats/small.npy")
    assert remote.num_rows() == 12
    assert _rows(remote, 5) == EXPECTED
    assert _rows(remote, 3, remote.partitions(4)[2]) == EXPECTED[6:9]


@pytest.mark.parametrize("order", ["C", "F"])
def test_remote_npy_of_any_order_and_rank_gives_the_same_rows(order, tmp_path):
    import fsspec

    cube = np.asarray(np.arange(7 * 3 * 2, dtype=np.int32).reshape(7, 3, 2), order=order)
    np.save(tmp_path / "cube.npy", cube)
    fsspec.filesystem("memory").put_file(str(tmp_path / "cube.npy"), f"/formats/{order}.npy")
    for url in (str(tmp_path / "cube.npy"), f"memory://formats/{order}.npy"):
        chunks = list(open_source(url).chunks(3))
        assert [c.shape for c in chunks] == [(3, 3, 2), (3, 3, 2), (1, 3, 2)]
        np.testing.assert_array_equal(np.concatenate(chunks), cube)


def test_compressed_csv_is_one_partition(tmp_path):
    path = tmp_path / "x.csv.gz"
    pd.DataFrame({"a": [1.0, 2.0, 3.0]}).to_csv(path, index=False, compression="gzip")
    source = open_source(str(path))
    assert len(source.partitions(4)) == 1
    assert _rows(source, 2) == [1.0, 2.0, 3.0]


def test_json_data_object_is_sliced_in_memory(tmp_path):
    import mlem_lib.api as mlem

    mlem.save([[1, 2], [3, 4], [5, 6]], str(tmp_path / "pairs"))
    source = open_source(str(tmp_path / "pairs.mlem"))
    assert [len(c) for c in source.chunks(2)] == [2, 1]


def test_a_modified_data_artifact_is_refused(tmp_path):
    import mlem_lib.api as mlem

    mlem.save(pd.DataFrame({"a": [1.0, 2.0]}), str(tmp_path / "frame"))
    pd.DataFrame({"a": [9.0, 9.0]}).to_parquet(tmp_path / "frame")
    with pytest.raises(ArtifactIntegrityError, match="modified or truncated"):
        open_source(str(tmp_path / "frame.mlem"))


def test_invalid_json_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": 2\n')
    with pytest.raises(ApplyError, match="line 2"):
        list(open_source(str(path)).chunks(10))


def test_pickled_npy_is_refused(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ApplyError, match="Python objects"):
        open_source(str(path))


def test_output_format_comes_from_the_extension():
    assert output_format("s3://b/p.PARQUET") == "parquet"
    assert output_format("p.ndjson") == "jsonl"
    assert output_format("p.csv.gz") == "csv"  # compressed text outputs are fine (issue 13)
    with pytest.raises(ApplyError, match=r"\.csv, \.parquet, \.jsonl, \.json or \.npy"):
        output_format("p.parquet.gz")
