"""PyTorch models end to end (mlem_lib/models/torch.py with the tensor and image types):
save -> show -> load (in a fresh process) -> apply in memory and on files -> serve over a
real uvicorn server -> HTTPClient, with a small MLP and a small CNN on 28x28 images."""

from __future__ import annotations

import io
import json
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
from mlem_lib.cli import main
from mlem_lib.errors import SchemaError
from tests._fixtures.deeplearning import need
from tests.conftest import REPO_ROOT

need("torch")
import torch  # noqa: E402

from tests.helpers import dlmodels  # noqa: E402


def _run(code: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run Python code in a fresh interpreter (the repository not importable there)."""
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd,
                          capture_output=True, text=True, timeout=600, env=full_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_save_infers_methods_schemas_and_pins_torch(torch_models, capsys):
    meta = mlem.load_meta(torch_models["cnn"])
    assert meta.model_type.type == "torch" and meta.model_type.io.type == "torchscript"
    sig = meta.model_type.methods["predict"]
    assert sig.args[0].type_.describe() == "torch[float32, (n, 1, 28, 28)]"
    assert sig.returns.describe() == "torch[float32, (n, 10)]"
    pins = {r.module: r.version for r in meta.python_requirements()}
    assert pins["torch"] == torch.__version__  # e.g. 2.13.0+cpu: the build that was saved
    assert not meta.custom_requirements()  # TorchScript needs no Python class
    assert main(["show", torch_models["cnn"]]) == 0
    shown = capsys.readouterr().out
    assert "saved as TorchScript (native)" in shown and "torch[float32, (n, 1, 28, 28)]" in shown


def test_load_in_a_fresh_process_gives_the_same_answers_on_the_cpu(torch_models, tmp_path):
    x = torch.rand(6, 1, 28, 28)
    expected = dlmodels.cnn()(x).detach()
    torch.save({"x": x, "y": expected}, tmp_path / "io.pt")
    out = _run(f"""
        import torch, mlem_lib.api as mlem
        io = torch.load("io.pt")
        model = mlem.load({torch_models["cnn"]!r})
        print(type(model).__name__, model.training, next(model.parameters()).device.type)
        print(torch.allclose(mlem.apply({torch_models["cnn"]!r}, io["x"]), io["y"], atol=1e-6))
    """, tmp_path)
    assert out.split() == ["RecursiveScriptModule", "False", "cpu", "True"]


@pytest.mark.parametrize("compile_", ["script", "trace"])
def test_torchscript_modules_are_detected_and_saved_as_they_are(compile_, tmp_path):
    x = torch.randn(5, 4)
    eager = dlmodels.mlp().eval()
    compiled = (torch.jit.script(eager) if compile_ == "script"
                else torch.jit.trace(eager, x))
    path = str(tmp_path / compile_)
    meta = mlem.save(compiled, path, sample_data=x)
    assert (meta.model_type.type, meta.model_type.io.type) == ("torch", "torchscript")
    assert meta.model_type.methods["predict"].returns.describe() == "torch[float32, (n, 3)]"
    loaded = mlem.load(path)
    assert isinstance(loaded, torch.jit.ScriptModule) and not loaded.training
    with torch.no_grad():
        assert torch.allclose(mlem.apply(path, x), eager(x), atol=1e-6)


def test_a_module_that_neither_scripts_nor_traces_is_pickled_with_its_local_class(tmp_path):
    (tmp_path / "gates.py").write_text(textwrap.dedent("""
        import torch

        class Gate(torch.nn.Module):
            '''Data-dependent Python control flow: TorchScript cannot compile or trace it.'''

            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(3, 2)

            def forward(self, x):
                import math
                if float(x.abs().sum()) > 1e6:
                    return self.linear(x) * math.inf
                return self.linear(x)
    """))
    _run("""
        import torch, mlem_lib.api as mlem, gates
        torch.manual_seed(0)
        gate, x = gates.Gate(), torch.randn(4, 3)
        meta = mlem.save(gate, "models/gate", sample_data=x)
        assert meta.model_type.io.type == "torch_pickle", meta.model_type.io
        assert [r.name for r in meta.custom_requirements()] == ["gates"]
        torch.save({"x": x, "y": gate(x).detach()}, "io.pt")
    """, tmp_path, env={"PYTHONPATH": str(tmp_path)})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = _run(f"""
        import torch, mlem_lib.api as mlem
        io = torch.load({str(tmp_path / "io.pt")!r})
        model = mlem.load({str(tmp_path / "models/gate")!r})
        print(type(model).__module__, torch.allclose(model(io["x"]), io["y"]))
        meta_model = mlem.load({str(tmp_path / "models/gate")!r}, device="meta")
        print(next(meta_model.parameters()).device.type)
    """, elsewhere)
    assert out.split() == ["gates", "True", "meta"]  # the shipped class; device= honoured


def test_predict_runs_forward_in_eval_mode_under_inference_mode(tmp_path):
    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = torch.nn.Dropout(0.9)
            self.seen: list[tuple[bool, bool]] = []

        def forward(self, x):
            self.seen.append((self.training, torch.is_inference_mode_enabled()))
            return self.drop(x)

    probe = Probe().train()
    loaded = mlem.apply(probe, torch.ones(2, 50))  # an in-memory model, as given
    assert torch.equal(loaded, torch.ones(2, 50))  # dropout off
    assert probe.seen[-1] == (False, True) and probe.training  # and put back as it was
    mlem.save(probe, str(tmp_path / "probe"), sample_data=torch.ones(3, 50))
    assert probe.training  # compiling it on the sample did not change it either


def test_a_loaded_torchscript_model_first_run_with_grad_still_predicts(torch_models):
    """TorchScript's executor specialises a module's graph for autograd when its first runs
    have grad enabled (a user trying the loaded model); inference-mode tensors then cannot
    go through it ("Inference tensors cannot be saved for backward")."""
    model = mlem.load(torch_models["mlp"])
    x = torch.randn(2, 4)
    for _ in range(3):
        expected = model(x)
    assert torch.allclose(mlem.apply(model, x), expected.detach(), atol=1e-6)


def test_forward_of_several_arguments_takes_a_tuple_or_a_dict(tmp_path):
    class Blend(torch.nn.Module):
        def forward(self, image, weight):
            return image.flatten(1).mean(dim=1, keepdim=True) * weight

    sample = (torch.ones(3, 1, 4, 4), torch.full((3, 1), 2.0))
    path = str(tmp_path / "blend")
    meta = mlem.save(Blend(), path, sample_data=sample)
    assert meta.model_type.io.type == "torchscript"
    assert meta.model_type.methods["predict"].args[0].type_.describe() == (
        "tuple[torch[float32, (n, 1, 4, 4)], torch[float32, (n, 1)]]")
    assert mlem.apply(path, (torch.ones(2, 1, 4, 4), torch.full((2, 1), 3.0))).tolist() == \
        [[3.0], [3.0]]
    kw = str(tmp_path / "blend-kw")
    mlem.save(Blend(), kw, sample_data={"image": sample[0], "weight": sample[1]})
    assert mlem.apply(kw, {"image": torch.ones(1, 1, 4, 4), "weight": torch.ones(1, 1)
                           }).tolist() == [[1.0]]


def test_apply_on_files_npy_and_images_one_row_per_file(torch_models, image_files, tmp_path):
    rows = np.random.default_rng(1).normal(size=(9, 4)).astype("float32")
    np.save(tmp_path / "rows.npy", rows)
    got = mlem.apply(torch_models["mlp"], str(tmp_path / "rows.npy"), batch_size=4)
    assert torch.allclose(got, dlmodels.mlp()(torch.from_numpy(rows)).detach(), atol=1e-6)

    preds = tmp_path / "preds.csv"
    summary = mlem.apply(torch_models["cnn"], str(image_files / "*.png"), output=str(preds),
                         batch_size=2)
    assert (summary.rows, summary.batches) == (5, 3)
    table = pd.read_csv(preds)
    assert list(table.columns) == ["file", *[f"prediction_{i}" for i in range(10)]]
    assert [os.path.basename(f) for f in table["file"]] == [f"digit-{i}.png" for i in range(5)]
    from PIL import Image

    first = np.asarray(Image.open(image_files / "digit-0.png"), dtype="float32") / 255
    expected = dlmodels.cnn()(torch.from_numpy(first)[None, None]).detach()[0].numpy()
    np.testing.assert_allclose(table.iloc[0, 1:].to_numpy(float), expected, atol=1e-5)
    in_memory = mlem.apply(torch_models["cnn"], str(image_files))  # a folder: png and jpg
    assert in_memory.shape == (6, 10)


def test_cli_apply_over_a_glob_of_images(torch_models, image_files, tmp_path, monkeypatch,
                                         capsys):
    monkeypatch.chdir(image_files)
    out = tmp_path / "preds.csv"
    assert main(["apply", torch_models["cnn"], "digit-*.png", "-o", str(out), "-q"]) == 0
    assert "wrote 5 predictions" in capsys.readouterr().out
    assert pd.read_csv(out)["file"].tolist() == [f"digit-{i}.png" for i in range(5)]
    (image_files.parent / "bad").mkdir(exist_ok=True)
    (image_files.parent / "bad" / "x.png").write_bytes(b"not a png")
    assert main(["apply", torch_models["cnn"], str(image_files.parent / "bad" / "*.png")]) == 1
    err = capsys.readouterr().err
    assert "x.png" in err and "PNG or JPEG" in err and err.count("\n") == 1


def test_served_over_json_npy_images_and_uploads(torch_models, image_files, uvicorn_app):
    url = uvicorn_app(torch_models["cnn"])
    png = (image_files / "digit-0.png").read_bytes()
    expected = mlem.apply(torch_models["cnn"], str(image_files / "digit-0.png"))[0]

    r = httpx.post(f"{url}/predict", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()[0], expected.numpy(), atol=1e-5)
    r = httpx.post(f"{url}/predict", files=[
        ("files", ("digit-0.png", png, "image/png")),
        ("files", ("c.jpg", (image_files / "colour.jpg").read_bytes(), "image/jpeg"))])
    assert r.status_code == 200 and len(r.json()) == 2
    batch = np.random.default_rng(2).random((3, 1, 28, 28)).astype("float32")
    buf = io.BytesIO()
    np.save(buf, batch)
    r = httpx.post(f"{url}/predict", content=buf.getvalue(),
                   headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-npy"
    np.testing.assert_allclose(np.load(io.BytesIO(r.content)),
                               dlmodels.cnn()(torch.from_numpy(batch)).detach().numpy(),
                               atol=1e-5)
    r = httpx.post(f"{url}/predict", json={"data": batch.tolist()})
    assert r.status_code == 200 and np.asarray(r.json()).shape == (3, 10)


@pytest.mark.parametrize("body, headers, expected", [
    (np.zeros((1, 3, 28, 28)).tolist(), None, "shape (n, 1, 28, 28)"),
    ([[[["x"] * 28] * 28]], None, "dtype float32"),
    (b"\x89PNG broken", {"Content-Type": "image/png"}, "a PNG or JPEG image"),
    (b"", {"Content-Type": "image/png"}, "a PNG or JPEG image"),
    ("npy-wrong-shape", {"Content-Type": "application/x-npy"}, "shape (n, 1, 28, 28)"),
    ("png-32", {"Content-Type": "image/png"}, "a 28x28 image"),
])
def test_bad_input_is_a_400_naming_what_was_expected(torch_models, uvicorn_app, body,
                                                     headers, expected):
    from PIL import Image

    url = uvicorn_app(torch_models["cnn"])
    if body == "npy-wrong-shape":
        buf = io.BytesIO()
        np.save(buf, np.zeros((2, 28, 28), "float32"))
        body = buf.getvalue()
    elif body == "png-32":
        buf = io.BytesIO()
        Image.new("L", (32, 32)).save(buf, "PNG")
        body = buf.getvalue()
    if headers is None:
        r = httpx.post(f"{url}/predict", json={"data": body})
    else:
        r = httpx.post(f"{url}/predict", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert expected in r.json()["expected"] or expected in r.json()["error"]


def test_docs_offer_an_upload_field_and_every_media_type(torch_models, uvicorn_app):
    url = uvicorn_app(torch_models["cnn"])
    spec = httpx.get(f"{url}/openapi.json").json()
    content = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-npy", "image/png",
                            "image/jpeg", "multipart/form-data"}
    upload = content["multipart/form-data"]["schema"]["properties"]["files"]
    assert upload == {"type": "array", "items": {"type": "string", "format": "binary"}}
    assert httpx.get(f"{url}/docs").status_code == 200


def test_http_client_answers_what_the_model_answers(torch_models, uvicorn_app):
    from mlem_lib.client import HTTPClient

    url = uvicorn_app(torch_models["mlp"])
    x = torch.randn(1500, 4)
    with HTTPClient(url) as client:
        small = client.predict(x[:3])
        big = client.predict(x)  # 1500 rows: .npy both ways
        assert isinstance(big, torch.Tensor) and big.shape == (1500, 3)
        with pytest.raises(SchemaError, match="shape"):
            client.predict(torch.zeros(2, 5))
    reference = dlmodels.mlp()(x).detach()
    assert torch.allclose(small, reference[:3], atol=1e-5)
    assert torch.allclose(big, reference, atol=1e-5)
    remote = mlem.apply_remote(url, x.numpy()[:10])
    assert torch.allclose(remote, reference[:10], atol=1e-5)


def test_the_interface_is_mlem_s_torch_data_type(torch_models, uvicorn_app):
    url = uvicorn_app(torch_models["mlp"])
    interface = httpx.get(f"{url}/interface.json").json()
    arg = interface["methods"]["predict"]["args"][0]
    assert arg["data_type"] == {"type": "torch", "shape": [None, 4], "dtype": "float32"}
    assert json.loads(json.dumps(interface))["meta"]["model_type"] == "torch"


def test_repository_stays_importable_without_torch():
    """Reading a torch model's metadata, and importing mlem_lib, never import torch."""
    code = ("import sys, mlem_lib.api as mlem; from mlem_lib.data.base import infer_data_type;"
            "infer_data_type([1.0]); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=120)
