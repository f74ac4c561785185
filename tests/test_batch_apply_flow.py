"""Tests of tasks/apply.py and flows/batch_apply.py on a real Prefect API and Dask cluster."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlem_lib.errors import SchemaError

pytestmark = pytest.mark.slow


def worker_pid(df: pd.DataFrame) -> np.ndarray:
    """A "model" that answers with the id of the process that ran it."""
    return np.full(len(df), os.getpid())


@pytest.fixture(scope="module")
def saved_pid_model(iris, tmp_path_factory) -> str:
    import mlem_lib.api as mlem

    path = str(tmp_path_factory.mktemp("models") / "pid")
    mlem.save(worker_pid, path, sample_data=iris[0])
    return path


@pytest.fixture(scope="module")
def iris_csv_big(iris, tmp_path_factory) -> str:
    """1 500 rows (iris ten times) as CSV: enough bytes for several byte-range partitions."""
    path = tmp_path_factory.mktemp("flow-data") / "iris10.csv"
    pd.concat([iris[0]] * 10, ignore_index=True).to_csv(path, index=False)
    return str(path)


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_local_threads_match_a_direct_apply(prefect_harness, saved_lr, iris, iris_lr,
                                            iris_files, tmp_path):
    from mlem_lib.prefect.flows.batch_apply import batch_apply

    out = tmp_path / "preds.parquet"
    summary = batch_apply(saved_lr, iris_files["parquet"], str(out), method="predict_proba",
                          partitions=3, batch_size=16)
    assert summary.rows == 150
    np.testing.assert_allclose(pd.read_parquet(out).to_numpy(),
                               iris_lr.predict_proba(iris[0]), rtol=1e-6)
    assert _entries(tmp_path) == ["preds.parquet"]  # staging folder removed


def test_without_output_the_predictions_are_returned(prefect_harness, saved_lr, iris,
                                                     iris_lr, iris_files):
    from mlem_lib.prefect.flows.batch_apply import batch_apply

    result = batch_apply(saved_lr, iris_files["jsonl"], partitions=4)
    np.testing.assert_array_equal(result, iris_lr.predict(iris[0]))


def test_dask_cluster_gives_the_same_output_as_the_local_run(prefect_harness, dask_address,
                                                             saved_lr, iris_csv_big, tmp_path):
    from mlem_lib.prefect.flows.batch_apply import batch_apply, on_dask

    local, remote = tmp_path / "local.csv", tmp_path / "dask.csv"
    batch_apply(saved_lr, iris_csv_big, str(local), method="predict_proba", partitions=5)
    summary = on_dask(dask_address)(saved_lr, iris_csv_big, str(remote),
                                    method="predict_proba", partitions=5)
    assert summary.rows == 1500
    assert remote.read_bytes() == local.read_bytes()
    assert len(pd.read_csv(remote)) == 1500
    assert _entries(tmp_path) == ["dask.csv", "local.csv"]


def test_dask_partitions_run_in_the_worker_processes(prefect_harness, dask_address,
                                                     saved_pid_model, iris_csv_big, tmp_path):
    from mlem_lib.prefect.flows.batch_apply import on_dask

    out = tmp_path / "pids.npy"
    on_dask(dask_address)(saved_pid_model, iris_csv_big, str(out), partitions=6)
    pids = np.load(out)
    assert len(pids) == 1500
    assert os.getpid() not in set(pids.tolist())
    assert len(set(pids.tolist())) == 2  # both worker processes got partitions


def test_schema_error_fails_the_flow_before_any_task(prefect_harness, iris, saved_lr,
                                                     tmp_path):
    from mlem_lib.prefect.flows.batch_apply import batch_apply

    bad = tmp_path / "bad.csv"
    iris[0].drop(columns=["petal_length"]).to_csv(bad, index=False)
    with pytest.raises(SchemaError, match="petal_length"):
        batch_apply(saved_lr, str(bad), str(tmp_path / "out.csv"))
    assert _entries(tmp_path) == ["bad.csv"]


def test_apply_batch_task_records_a_table_artifact(prefect_harness, saved_lr, iris_files,
                                                   tmp_path):
    from prefect import flow
    from prefect.client.orchestration import get_client

    from mlem_lib.prefect.tasks.apply import apply_batch

    out = str(tmp_path / "task.csv")

    @flow
    def one_batch() -> object:
        return apply_batch(saved_lr, iris_files["npy"], output=out)

    state = one_batch(return_state=True)
    summary = state.result()
    assert summary.rows == 150 and os.path.exists(out)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    tables = [a for a in artifacts
              if a.type == "table" and a.flow_run_id == state.state_details.flow_run_id]
    assert tables and "rows/s" in str(tables[0].data) and "150" in str(tables[0].data)


def test_apply_batch_does_not_retry_schema_errors(prefect_harness, iris, saved_lr, tmp_path):
    from prefect import flow
    from prefect.client.orchestration import get_client

    from mlem_lib.prefect.tasks.apply import apply_batch

    bad = tmp_path / "bad.parquet"
    iris[0].astype({"sepal_width": str}).to_parquet(bad, index=False)

    @flow
    def bad_batch() -> dict:
        state = apply_batch(saved_lr, str(bad), output=str(tmp_path / "o.csv"),
                            return_state=True)
        return {"failed": state.is_failed(), "message": state.message,
                "task_run_id": state.state_details.task_run_id}

    outcome = bad_batch()
    assert outcome["failed"] and "sepal_width" in outcome["message"]
    with get_client(sync_client=True) as client:
        task_run = client.read_task_run(outcome["task_run_id"])
    assert task_run.run_count == 1

