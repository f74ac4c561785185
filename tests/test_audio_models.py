"""A function over WAV bytes, as in MLEM's launch post (`mlem apply dog-bark-translator
./short-dog-phrase.wav`): saved with a WAV sample, applied to a clip, a folder and a glob
(also through a registry reference), served raw, uploaded and as base64."""

from __future__ import annotations

import base64
import json

import httpx
import pandas as pd

import mlem_lib.api as mlem
from mlem_lib.cli import main
from tests.helpers import dlmodels


def test_saved_with_a_binary_schema_of_the_sample_media_type(saved_bark, capsys):
    meta = mlem.load_meta(saved_bark)
    sig = meta.model_type.methods["__call__"]
    assert sig.args[0].type_.model_dump() == {"type": "binary", "kind": "bytes",
                                              "media_type": "audio/wav"}
    assert sig.returns.describe() == "dict{seconds: float, peak: float, says: str}"
    assert main(["show", saved_bark]) == 0
    assert "binary[audio/wav]" in capsys.readouterr().out


def test_mlem_apply_model_clip_wav(saved_bark, clips, capsys):
    assert main(["apply", saved_bark, str(clips / "clip-2.wav")]) == 0
    assert json.loads(capsys.readouterr().out) == {"seconds": 0.25, "peak": 0.9,
                                                   "says": "woof"}
    assert mlem.apply(saved_bark, str(clips / "clip-0.wav"))["says"] == "..."


def test_a_folder_or_glob_of_clips_gives_one_row_per_file(saved_bark, clips, tmp_path,
                                                          monkeypatch, capsys):
    monkeypatch.chdir(clips)
    out = tmp_path / "barks.csv"
    assert main(["apply", saved_bark, "clip-*.wav", "-o", str(out), "-q"]) == 0
    assert pd.read_csv(out).to_dict("records") == [
        {"file": f"clip-{i}.wav", "seconds": 0.25, "peak": peak, "says": says}
        for i, (peak, says) in enumerate([(0.1, "..."), (0.5, "woof"), (0.9, "woof")])]
    as_list = mlem.apply(saved_bark, str(clips))
    assert [r["says"] for r in as_list] == ["...", "woof", "woof"]
    (tmp_path / "empty.wav").write_bytes(b"")
    assert main(["apply", saved_bark, str(tmp_path / "empty.wav")]) == 1
    err = capsys.readouterr().err
    assert "empty.wav" in err and "empty file: expected audio/wav bytes" in err


def test_served_raw_uploaded_and_as_base64(saved_bark, clips, uvicorn_app):
    from mlem_lib.client import HTTPClient

    url = uvicorn_app(saved_bark)
    wav = (clips / "clip-1.wav").read_bytes()
    expected = dlmodels.bark(wav)
    for request in (
            dict(content=wav, headers={"Content-Type": "audio/wav"}),
            dict(content=wav, headers={"Content-Type": "application/octet-stream"}),
            dict(files={"file": ("clip-1.wav", wav, "audio/wav")}),
            dict(json={"data": base64.b64encode(wav).decode()})):
        r = httpx.post(f"{url}/predict", **request)
        assert r.status_code == 200 and r.json() == expected, r.text
    with HTTPClient(url) as client:
        assert client.predict(wav) == expected
    spec = httpx.get(f"{url}/openapi.json").json()["paths"]["/predict"]["post"]
    upload = spec["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["properties"]["file"] == {"type": "string", "format": "binary"}


def test_empty_and_foreign_files_are_a_400_naming_what_was_expected(saved_bark, uvicorn_app):
    url = uvicorn_app(saved_bark)
    for request in (dict(content=b"", headers={"Content-Type": "audio/wav"}),
                    dict(files={"file": ("empty.wav", b"", "audio/wav")}),
                    dict(json={"data": ""}),
                    dict(content=b"not audio at all", headers={"Content-Type": "audio/wav"})):
        r = httpx.post(f"{url}/predict", **request)
        assert r.status_code == 400, r.text
        assert r.json()["expected"] == "audio/wav bytes"
    r = httpx.post(f"{url}/predict", content=b"x", headers={"Content-Type": "video/mp4"})
    assert r.status_code == 415 and "audio/wav" in r.json()["expected"]


def test_apply_through_a_registry_reference(registry_repo, clips, tmp_path, capsys):
    path = registry_repo / "models" / "dog-bark"
    mlem.save(dlmodels.bark, str(path), sample_data=dlmodels.wav_bytes())
    mlem.register(str(path), repo=str(registry_repo), version="v1.0.0")
    code = main(["apply", "dog-bark@v1.0.0", str(clips / "clip-2.wav"), "--repo",
                 str(registry_repo)])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["says"] == "woof"
