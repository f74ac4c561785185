"""Issue 13: one DataFrame with every supported dtype gives identical predictions on
every path.

A property test (hypothesis): for generated tables of categoricals, nullable ints,
nullable booleans, nullable and plain strings, naive and time-zone-aware date-times,
floats (NaN and infinities included) and bools, with missing values where the dtype
allows them, ``apply`` in memory, ``apply`` of the table written by pandas as CSV,
Parquet and JSON Lines, and ``HTTPClient`` over JSON and over Parquet against a real
``mlem serve`` all hand the model the same cells with the same dtypes. The model is the
``echo`` function of :mod:`tests._fixtures.fidelity`, which returns every cell with its
type, so "identical predictions" means identical data.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mlem_lib.api as mlem
from mlem_lib.client import HTTPClient
from mlem_lib.data import media
from mlem_lib.data.pandas import DataFrameType
from tests._fixtures.fidelity import echo_frame
from tests._fixtures.serve import stop, wait_ready
from tests.conftest import free_port

CITIES = ["Berlin", "Paris", "Rome"]  # the categories the echo model was saved with
# text as users have it: any printable character, quotes, separators and line breaks
TEXT = (st.text(st.characters(blacklist_categories=("Cs", "Cc"))
                | st.sampled_from(['"', ",", "\n", ";", " "]), min_size=1, max_size=12)
        | st.sampled_from(["NA", "null", "NaN", "a\r\nb", " ", '"q"', "007", "1.50"]))
MOMENTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31))


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 6))

    def column(strategy: st.SearchStrategy) -> list:
        return draw(st.lists(strategy, min_size=n, max_size=n))

    utc = column(_maybe(MOMENTS))
    return pd.DataFrame({
        "city": pd.Categorical(column(_maybe(st.sampled_from(CITIES))), categories=CITIES),
        "count": pd.array(column(_maybe(st.integers(-(2**62), 2**62))), dtype="Int64"),
        "ok": pd.array(column(_maybe(st.booleans())), dtype="boolean"),
        "note": pd.array(column(_maybe(TEXT)), dtype="string"),
        "code": pd.Series(column(TEXT), dtype="str"),
        "when": pd.to_datetime(pd.Series(column(_maybe(MOMENTS)), dtype="object"))
                  .astype("datetime64[us]"),
        "at": pd.to_datetime(pd.Series([None if t is None else t.replace(tzinfo=UTC)
                                        for t in utc], dtype="object"), utc=True)
                .dt.tz_convert("Europe/Paris").astype("datetime64[us, Europe/Paris]"),
        "x": column(st.floats(allow_subnormal=False, width=64)),
        "flag": column(st.booleans()),
    })


def _table(**columns: list) -> pd.DataFrame:
    """Two rows of the echo model's table with ``columns`` replaced (the cases the
    property test found, kept as explicit examples)."""
    base = echo_frame().head(2)
    for name, values in columns.items():
        if name == "at":
            values = pd.to_datetime(pd.Series(values), format="ISO8601", utc=True) \
                .dt.tz_convert("Europe/Paris").astype("datetime64[us, Europe/Paris]")
        base[name] = pd.Series(values, dtype=base[name].dtype) if name != "at" else values
    return base


def _write_json_lines(frame: pd.DataFrame, path: Path) -> None:
    """One JSON object a line, in the JSON form the server speaks (ISO 8601 date-times,
    "NaN"/"Infinity" for non-finite floats). Not ``DataFrame.to_json``: it writes floats
    with at most 15 digits and infinities as null, so what it writes is not the table."""
    records = DataFrameType.infer(frame).to_json(frame)["values"]
    path.write_bytes(b"".join(media.dumps_json(r) + b"\n" for r in records))


@pytest.fixture(scope="module")
def echo(fidelity_models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The echo model, its path and the URL of a real ``mlem serve`` of it."""
    entry = fidelity_models["echo"]
    port = free_port()
    log = tmp_path_factory.mktemp("roundtrip") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlem_lib.cli", "serve", entry["path"],
                                 "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log, timeout=90.0)
        yield {**entry, "url": url, "folder": tmp_path_factory.mktemp("files")}
    finally:
        stop(proc)


def test_every_path_gives_the_same_predictions(echo):
    model, path, folder = echo["model"], echo["path"], Path(echo["folder"])
    json_client = HTTPClient(echo["url"], binary_rows=10**9)  # always JSON
    parquet_client = HTTPClient(echo["url"], binary_rows=1)  # always Parquet

    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(tables())
    @example(_table(count=[2**62 - 1, None]))  # CSV read the column through float64
    @example(_table(ok=[None, None]))  # an empty boolean column in CSV was float64: refused
    @example(_table(x=[float("inf"), float("nan")]))  # HTTPClient sent them as null
    @example(_table(at=["1903-08-19 01:29:52.000198Z", None]))  # +00:09:21 was unreadable
    def same_everywhere(frame: pd.DataFrame) -> None:
        expected = model(frame)
        assert mlem.apply(path, frame) == expected
        csv, parquet, jsonl = folder / "t.csv", folder / "t.parquet", folder / "t.jsonl"
        frame.to_csv(csv, index=False)  # pandas' defaults, as users write them
        frame.to_parquet(parquet)
        _write_json_lines(frame, jsonl)
        for source in (csv, parquet, jsonl):
            assert mlem.apply(path, str(source)) == expected, source.suffix
        assert json_client.predict(frame) == expected
        assert parquet_client.predict(frame) == expected

    try:
        same_everywhere()
    finally:
        json_client.close()
        parquet_client.close()

