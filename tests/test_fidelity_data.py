"""Issue 13: data arrives the way users send it, and the model gets exactly its saved dtypes.

Date-times (naive and time-zone aware) over curl-style JSON strings, CSV files written by
pandas with default options, Parquet bodies, ``HTTPClient`` with DataFrames and the
deployment smoke request; CSV read with the saved schema (strings stay strings, missing
values become what the column allows); categorical and nullable dtypes through JSON, CSV
and Parquet; text models applied to CSV files, Series and arrays and served with the same
bodies. Servers are real ``mlem serve`` processes on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

import mlem_lib.api as mlem
from mlem_lib.cli import main
from mlem_lib.client import HTTPClient
from mlem_lib.data.pandas import DataFrameType
from mlem_lib.errors import SchemaError
from tests._fixtures.fidelity import echo_frame, schedule_frame
from tests._fixtures.serve import stop, wait_ready
from tests.conftest import free_port

pytestmark = pytest.mark.slow
PARQUET = "application/x-parquet"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """``serve(path)`` -> URL of a real ``mlem serve`` of that model (one per path)."""
    started: dict[str, tuple[subprocess.Popen[bytes], str]] = {}

    def start(path: str) -> str:
        if path not in started:
            port = free_port()
            log = tmp_path_factory.mktemp("serve") / "server.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen([sys.executable, "-m", "mlem_lib.cli", "serve", path,
                                         "--host", "127.0.0.1", "--port", str(port)],
                                        stdout=out, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            started[path] = (proc, url)
            wait_ready(url, proc, log, timeout=90.0)
        return started[path][1]

    yield start
    for proc, _ in started.values():
        stop(proc)


def _post(url: str, body: bytes | str, ctype: str, path: str = "/predict") -> httpx.Response:
    return httpx.post(url + path, content=body, headers={"Content-Type": ctype}, timeout=60)


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


# --- date-times ------------------------------------------------------------------------

def test_datetimes_as_curl_sends_them(fidelity_models, serve):
    """ISO 8601 strings with ``T`` or a space, with ``Z``, an offset or none, a bare date."""
    url = serve(fidelity_models["schedule"]["path"])
    body = """{"data": {"values": [
        {"booked": "2024-03-01T08:00:00", "departs": "2024-03-01T12:00:00+01:00", "express": true},
        {"booked": "2024-03-01 08:00", "departs": "2024-03-01 11:00Z", "express": false},
        {"booked": "2024-03-01T09:00:00+01:00", "departs": "2024-03-01 12:00", "express": false},
        {"booked": "2024-03-01", "departs": "2024-03-01T01:30:00.000+01:00", "express": false}
    ]}}"""
    r = _post(url, body, "application/json")
    assert r.status_code == 200, r.text
    # a naive value in the Paris column is Paris wall time; an offset in the naive column
    # is converted to UTC
    assert r.json() == [103.0, 3.0, 3.0, 0.5]
    bad = _post(url, body.replace("2024-03-01 11:00Z", "2024-13-01 11:00"), "application/json")
    assert bad.status_code == 400 and bad.json()["field"] == "departs"
    assert "'2024-13-01 11:00' is not an ISO 8601 date-time" in bad.json()["error"]
    number = _post(url, body.replace('"2024-03-01 08:00"', "1709280000000"), "application/json")
    assert number.status_code == 400 and "epoch_ms" in number.json()["error"]


def test_datetimes_in_csv_parquet_and_invocations(fidelity_models, serve, tmp_path):
    entry = fidelity_models["schedule"]
    frame = schedule_frame()
    expected = entry["model"].predict(frame).tolist()
    csv = tmp_path / "schedule.csv"
    frame.to_csv(csv)  # pandas' defaults: the index too, offsets written as +01:00/+02:00
    out = tmp_path / "preds.csv"
    assert main(["apply", entry["path"], str(csv), "-o", str(out), "--batch-size", "2"]) == 0
    assert pd.read_csv(out)["prediction"].tolist() == expected
    assert main(["apply", entry["path"], str(csv), "--quiet"]) == 0
    parquet = tmp_path / "schedule.parquet"
    frame.to_parquet(parquet)
    assert mlem.apply(entry["path"], str(parquet)).tolist() == expected

    url = serve(entry["path"])
    r = _post(url, csv.read_bytes(), "text/csv", "/invocations")
    assert r.status_code == 200 and r.json() == expected, r.text
    r = _post(url, _parquet(frame), PARQUET)
    assert r.status_code == 200 and r.json() == expected, r.text
    # the naive column given time-zone-aware values (another Parquet writer): UTC
    aware = frame.assign(booked=frame["booked"].dt.tz_localize("UTC"))
    assert _post(url, _parquet(aware), PARQUET).json() == expected


def test_httpclient_sends_datetime_frames_as_json_and_parquet(fidelity_models, serve):
    entry = fidelity_models["schedule"]
    frame = schedule_frame()
    url = serve(entry["path"])
    expected = entry["model"].predict(frame).tolist()
    with HTTPClient(url) as client:
        assert np.asarray(client.predict(frame)).tolist() == expected
    with HTTPClient(url, binary_rows=1) as client:  # the Parquet path big batches take
        assert np.asarray(client.predict(frame)).tolist() == expected


def test_smoke_request_and_openapi_of_a_datetime_model(fidelity_models, serve):
    from mlem_lib.deploy.smoke import SmokeRequest, check_http

    entry = fidelity_models["schedule"]
    meta = mlem.load_meta(entry["path"])
    request = SmokeRequest.for_model(meta)
    row = request.body["data"]["values"][0]
    assert isinstance(row["booked"], str) and isinstance(row["departs"], str)
    url = serve(entry["path"])
    answer = check_http(url, meta)  # what a rollout sends: it must answer 200
    assert isinstance(answer, list) and len(answer) == 1
    schema = httpx.get(url + "/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    row_schema = body["schema"]["properties"]["data"]["anyOf"][0]["properties"]["values"][
        "items"]["properties"]
    assert row_schema["booked"]["format"] == "date-time"
    assert row_schema["departs"]["format"] == "date-time"


def test_epoch_milliseconds_when_the_schema_says_so():
    frame = schedule_frame()
    schema = DataFrameType.infer(frame).model_copy(update={"date_format": "epoch_ms"})
    ms = int(pd.Timestamp("2024-03-01T08:00:00Z").timestamp() * 1000)
    got = schema.from_json({"values": [{"booked": ms, "departs": ms, "express": True}]})
    assert got["booked"].tolist() == [pd.Timestamp("2024-03-01 08:00")]
    assert got["departs"].tolist() == [pd.Timestamp("2024-03-01 09:00", tz="Europe/Paris")]
    assert schema.to_json(got)["values"][0]["booked"] == ms
    assert DataFrameType.model_validate(schema.model_dump()).date_format == "epoch_ms"
    with pytest.raises(ValueError, match="date_format"):
        DataFrameType(columns=["a"], dtypes=["datetime64[ns]"], date_format="unix")


# --- CSV read with the saved schema ------------------------------------------------------

def test_csv_strings_stay_strings(fidelity_models, serve, tmp_path):
    """``city=123`` in a string column is the city "123", in every chunk."""
    entry = fidelity_models["pipeline"]
    frame = pd.DataFrame({"city": ["123", "123", "Paris"], "plan": ["pro", "basic", "007"],
                          "x": [0.1, 0.7, -0.2]})
    csv = tmp_path / "cities.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "preds.csv"
    assert main(["apply", entry["path"], str(csv), "-o", str(out), "--batch-size", "2"]) == 0
    assert pd.read_csv(out)["prediction"].tolist() == entry["model"].predict(frame).tolist()
    r = _post(serve(entry["path"]), csv.read_bytes(), "text/csv", "/invocations")
    assert r.status_code == 200 and r.json() == entry["model"].predict(frame).tolist()


def test_missing_values_in_csv_become_what_the_column_allows(fidelity_models, tmp_path,
                                                             capsys):
    entry = fidelity_models["echo"]
    frame = echo_frame()
    csv = tmp_path / "echo.csv"
    frame.to_csv(csv)
    assert mlem.apply(entry["path"], str(csv)) == entry["model"](frame)

    def count(df: pd.DataFrame) -> pd.Series:
        return df["n"] * 2

    model = str(tmp_path / "count")
    mlem.save(count, model, sample_data=pd.DataFrame({"n": [1, 2]}))
    holes = tmp_path / "holes.csv"
    holes.write_text('n\n1\n""\n3\n', encoding="utf-8")  # an empty cell in row 1
    assert main(["apply", model, str(holes)]) == 1
    err = capsys.readouterr().err
    assert "column 'n'" in err and "nullable dtype Int64" in err and "row 2" in err


def test_categorical_and_nullable_dtypes_round_trip(fidelity_models, serve):
    entry = fidelity_models["echo"]
    frame = echo_frame()
    expected = entry["model"](frame)
    url = serve(entry["path"])
    meta = mlem.load_meta(entry["path"])
    schema = meta.model_type.methods["__call__"].args[0].type_
    assert schema.categories == {"city": ["Berlin", "Paris", "Rome"]}
    json_body = json.dumps({"data": schema.to_json(frame)})
    for body, ctype in ((json_body, "application/json"), (frame.to_csv(), "text/csv"),
                        (frame.to_csv(index=False), "text/csv"), (_parquet(frame), PARQUET)):
        r = _post(url, body, ctype)
        assert r.status_code == 200 and r.json() == expected, (ctype, r.text)
    for binary_rows in (1000, 1):
        with HTTPClient(url, binary_rows=binary_rows) as client:
            assert client.predict(frame) == expected
    unknown = json_body.replace('"Rome"', '"Oslo"').replace('"Berlin"', '"Oslo"', 1)
    r = _post(url, unknown, "application/json")
    assert r.status_code == 400 and r.json()["field"] == "city" and "Oslo" in r.json()["error"]


def test_numbers_in_nullable_and_bool_columns_are_checked():
    schema = DataFrameType.infer(echo_frame())
    row = schema.to_json(echo_frame().head(1))["values"][0]
    for column, value in (("count", "3"), ("count", True), ("count", 1.5), ("ok", 1),
                          ("when", True)):
        with pytest.raises(SchemaError) as err:
            schema.from_json({"values": [{**row, column: value}]})
        assert err.value.field == column


# --- text models ---------------------------------------------------------------------

def test_text_model_on_csv_series_and_arrays(fidelity_models, serve, tmp_path, capsys):
    entry = fidelity_models["text"]
    texts = ["good fun", "bad film", "007"]
    expected = entry["model"].predict(texts).tolist()
    one = tmp_path / "reviews.csv"
    pd.DataFrame({"text": texts}).to_csv(one)  # pandas' defaults: with the index
    two = tmp_path / "reviews2.csv"
    pd.DataFrame({"id": [1, 2, 3], "text": texts}).to_csv(two, index=False)
    assert mlem.apply(entry["path"], str(one)).tolist() == expected
    assert mlem.apply(entry["path"], str(two), column="text").tolist() == expected
    assert mlem.apply(entry["path"], pd.Series(texts)).tolist() == expected
    assert mlem.apply(entry["path"], np.array(texts)).tolist() == expected
    out = tmp_path / "scored.csv"
    assert main(["apply", entry["path"], str(two), "--column", "text", "--keep-columns", "id",
                 "-o", str(out)]) == 0
    assert pd.read_csv(out).to_dict("list") == {"id": [1, 2, 3], "prediction": expected}
    assert main(["apply", entry["path"], str(two)]) == 1
    assert "--column" in capsys.readouterr().err

    url = serve(entry["path"])
    for body, ctype in ((json.dumps({"data": texts}), "application/json"),
                        (one.read_bytes(), "text/csv"),
                        (_parquet(pd.DataFrame({"text": texts})), PARQUET)):
        r = _post(url, body, ctype)
        assert r.status_code == 200 and r.json() == expected, (ctype, r.text)
    with HTTPClient(url) as client:
        assert np.asarray(client.predict(pd.Series(texts))).tolist() == expected


def test_text_model_saved_with_an_array_keeps_long_texts(tmp_path):
    def words(texts: np.ndarray) -> list[int]:
        return [len(t.split()) for t in texts]

    path = str(tmp_path / "words")
    mlem.save(words, path, sample_data=np.array(["a b", "c"]))
    long = "one two three four five six seven"
    assert mlem.apply(path, np.array([long])) == [7]  # not cut to the sample's <U3
