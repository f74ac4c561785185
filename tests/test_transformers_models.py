"""Hugging Face transformers end to end (mlem_lib/models/transformers.py): pipelines and
(model, tokenizer) pairs saved with save_pretrained as a folder of verified files, loaded
without any hub, applied, served and called with HTTPClient. The models are tiny random
BERTs built from a config with a WordLevel tokenizer (tests/helpers/dlmodels.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import mlem_lib.api as mlem
from mlem_lib.errors import ArtifactIntegrityError, SchemaError
from tests._fixtures.deeplearning import need

need("transformers")

TEXTS = ["good movie", "awful film", "the movie is not bad"]


def test_saved_as_a_folder_of_files_each_with_its_hash(hf_models, capsys):
    from mlem_lib.cli import main

    assert main(["show", hf_models["clf"]]) == 0
    assert "saved as transformers' save_pretrained files (native)" in capsys.readouterr().out
    meta = mlem.load_meta(hf_models["clf"])
    io = meta.model_type.io
    assert (io.type, io.kind, io.task, io.architecture) == (
        "transformers", "pipeline", "text-classification", "BertForSequenceClassification")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(meta.artifacts)
    folder = Path(hf_models["clf"])
    for name, art in meta.artifacts.items():
        assert art.uri == f"clf/{name}" and (folder / name).stat().st_size == art.size
    assert not any(p.suffix in (".pkl", ".bin", ".pt") for p in folder.iterdir())  # no pickle
    assert len(meta.model_hash) == 64 and meta.model_hash not in {
        a.hash for a in meta.artifacts.values()}  # one hash over every file
    modules = {r.module for r in meta.python_requirements()}
    assert {"transformers", "tokenizers", "torch", "safetensors"} <= modules
    sig = meta.model_type.methods["predict"]
    assert sig.args[0].type_.describe() == "list[str]"
    assert sig.returns.describe() == "list[dict{label: str, score: float}]"


def test_every_file_is_checked_when_loading(hf_models, tmp_path):
    import shutil

    copy = tmp_path / "clf"
    shutil.copytree(hf_models["clf"], copy)
    shutil.copy(hf_models["clf"] + ".mlem", str(copy) + ".mlem")
    assert mlem.apply(str(copy), ["good"])[0]["label"] in ("NEG", "POS")
    config = copy / "tokenizer_config.json"
    config.write_text(config.read_text().replace("}", ', "x": 1}', 1))
    with pytest.raises(ArtifactIntegrityError, match=r"tokenizer_config\.json"):
        mlem.load(str(copy))


def test_pipelines_and_pairs_answer_as_the_originals(hf_models):
    from tests.helpers import dlmodels

    assert mlem.apply(hf_models["clf"], TEXTS) == dlmodels.text_classifier()(TEXTS)
    pair = mlem.load(hf_models["pair"])
    assert type(pair[0]).__name__ == "BertForSequenceClassification"
    probs = mlem.apply(hf_models["pair"], TEXTS, method="predict_proba")
    assert probs.shape == (3, 2) and np.allclose(probs.sum(axis=1), 1.0)
    scores = [r["score"] for r in dlmodels.text_classifier()(TEXTS)]
    np.testing.assert_allclose(probs.max(axis=1), scores, rtol=1e-5)
    embeddings = mlem.apply(hf_models["fe"], TEXTS)
    assert embeddings.shape == (3, 16) and embeddings.dtype == np.float32
    meta = mlem.load_meta(hf_models["fe"])
    assert meta.model_type.methods["predict"].returns.describe() == "ndarray[float32, (n, 16)]"


def test_loading_never_reaches_a_model_hub(hf_models, tmp_path):
    """A fresh process with no offline switch and a hub address that refuses connections."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf-home"))
    code = textwrap.dedent(f"""
        import mlem_lib.api as mlem
        print(mlem.apply({hf_models["clf"]!r}, ["good movie"])[0]["label"])
        print(mlem.apply({hf_models["pair"]!r}, ["good movie"]).shape)
    """)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[0] in ("NEG", "POS") and "(1, 2)" in proc.stdout
    assert not (tmp_path / "hf-home" / "hub").exists()  # nothing cached from anywhere


def test_apply_on_a_file_of_texts(hf_models, tmp_path):
    texts = tmp_path / "reviews.jsonl"
    texts.write_text("".join(f'"{t}"\n' for t in TEXTS))
    out = tmp_path / "labels.csv"
    summary = mlem.apply(hf_models["clf"], str(texts), output=str(out), batch_size=2)
    assert summary.rows == 3
    table = pd.read_csv(out)
    assert list(table.columns) == ["label", "score"] and len(table) == 3


def test_served_and_called_with_the_http_client(hf_models, uvicorn_app):
    from mlem_lib.client import HTTPClient

    url = uvicorn_app(hf_models["clf"])
    r = httpx.post(f"{url}/predict", json={"data": TEXTS})
    assert r.status_code == 200 and [x["label"] for x in r.json()] == [
        x["label"] for x in mlem.apply(hf_models["clf"], TEXTS)]
    r = httpx.post(f"{url}/predict", json={"data": [1, 2]})
    assert r.status_code == 400 and r.json()["expected"] == "str"
    with HTTPClient(url) as client:
        assert client.predict(TEXTS[:1]) == mlem.apply(hf_models["clf"], TEXTS[:1])
        with pytest.raises(SchemaError):
            client.predict("not a list")
    url = uvicorn_app(hf_models["pair"])
    with HTTPClient(url) as client:
        assert sorted(client.methods) == ["predict", "predict_proba"]
        np.testing.assert_allclose(client.predict_proba(TEXTS),
                                   mlem.apply(hf_models["pair"], TEXTS, "predict_proba"),
                                   rtol=1e-5)


def test_a_folder_model_goes_through_the_registry_file_by_file(hf_models, registry_repo,
                                                               tmp_path):
    import shutil

    from tests._fixtures.registry import git

    target = registry_repo / "models" / "clf"  # the .mlem file names its folder: clf/
    shutil.copytree(hf_models["clf"], target)
    shutil.copy(hf_models["clf"] + ".mlem", str(target) + ".mlem")
    version = mlem.register(str(target), repo=str(registry_repo), version="v1.0.0")
    tracked = git(registry_repo, "ls-files", "models").split()
    assert "models/clf.mlem" in tracked and "models/clf/config.json.dvc" in tracked
    assert "models/clf/model.safetensors" not in tracked  # DVC holds the binaries
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(registry_repo), str(clone))
    labels = mlem.apply("clf@v1.0.0", TEXTS, repo=str(clone))
    assert labels == mlem.apply(hf_models["clf"], TEXTS) and version.tag == "clf@v1.0.0"
