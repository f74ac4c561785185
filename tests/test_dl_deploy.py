"""Deep-learning models packaged and deployed for real (issue 19): a local deployment (a
server process) whose smoke request is built from the saved schema (a tensor, an image, a
WAV file, texts); a pip package installed in a fresh venv; Docker images, built by a real
engine with torch from a wheelhouse (no GPU wheels downloaded) and run, of each model kind:
the CNN (PNG uploads), the MLP (tensor JSON and ``.npy`` bodies), the transformers text
classifier (offline: nothing from a model hub) and the function over WAV bytes; each
answers as ``mlem.apply`` does in process, through HTTPClient and the schema's smoke
request."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import httpx
import numpy as np
import pytest

import mlem_lib.api as mlem
from mlem_lib.client import HTTPClient
from mlem_lib.deploy import deploy
from mlem_lib.deploy.smoke import SmokeRequest, check_http
from tests._fixtures.deeplearning import need, torch_wheelhouse
from tests.conftest import free_port, uv_command


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mlp", "cnn", "bark", "clf"])
def test_local_deployment_smoke_request_built_from_the_schema(kind, declare, removed_after,
                                                              request):
    # the local target's declared port must be a real one (gt=0): free_port() it is
    if kind in ("mlp", "cnn"):
        model = request.getfixturevalue("torch_models")[kind]
    elif kind == "clf":
        model = request.getfixturevalue("hf_models")["clf"]
    else:
        model = request.getfixturevalue("saved_bark")
    smoke = SmokeRequest.for_model(mlem.load_meta(model))
    decl = removed_after(declare(f"dl-{kind}", type="local", runtime="process",
                                 port=free_port()))
    state = deploy(decl, model, progress=False)  # waits for /health, then sends the smoke
    answer = httpx.post(f"{state.url}/{smoke.method}", json=smoke.body, timeout=60)
    assert answer.status_code == 200 and answer.json()
    if kind == "mlp":
        import torch

        assert np.asarray(smoke.body["data"]).shape == (1, 4)
        expected = mlem.apply(model, torch.tensor(smoke.body["data"]))
        np.testing.assert_allclose(answer.json(), expected.numpy(), atol=1e-6)
    elif kind == "cnn":
        assert np.asarray(answer.json()).shape == (1, 10)
        assert np.asarray(smoke.body["data"]).shape == (1, 1, 28, 28)
    elif kind == "bark":
        assert answer.json()["says"] == "..."  # the example is a silent WAV file
    else:
        assert answer.json()[0]["label"] in ("NEG", "POS")


@pytest.mark.slow
def test_pip_package_of_a_torch_model_in_a_fresh_venv(torch_models, tmp_path):
    wheels = torch_wheelhouse()
    package = mlem.build(torch_models["mlp"], "pip", {"target": str(tmp_path / "dist"),
                                                      "package_name": "tiny-mlp"})
    assert any(r.startswith("torch==") for r in package.requirements)
    venv = tmp_path / "venv"
    uv = uv_command()
    subprocess.run([*uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([*uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                    "--find-links", str(tmp_path / "dist"), "--find-links", wheels, "tiny-mlp"],
                   check=True, timeout=900)
    code = textwrap.dedent("""
        import importlib.metadata as m, torch, tiny_mlp
        print(m.version("torch"), tiny_mlp.predict(torch.zeros(2, 4)).shape)
        print(sorted(d.metadata["Name"] for d in m.distributions()
                     if d.metadata["Name"].startswith("nvidia")))
    """)
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    import torch

    assert out.stdout.split("\n")[:2] == [f"{torch.__version__} torch.Size([2, 3])", "[]"]


@pytest.mark.slow
@pytest.mark.docker
def test_torch_image_from_a_wheelhouse_serves_png_uploads(torch_models, image_files,
                                                          docker_client, dl_image,
                                                          run_container, tmp_path):
    need("torch")
    built = dl_image(torch_models["cnn"], "cnn")
    image = built.tags[0]
    dockerfile = (tmp_path / "ctx-cnn" / "Dockerfile").read_text()
    assert "--no-index --find-links /tmp/mlem/wheelhouse" in dockerfile
    assert "download.pytorch.org" not in dockerfile  # the wheelhouse has torch
    dists = docker_client.containers.run(
        image, entrypoint=["python", "-c", "import importlib.metadata as m; print("
                           "sorted(d.metadata['Name'].lower() for d in m.distributions()))"],
        remove=True, network_mode="host").decode()
    assert "'torch'" in dists and "nvidia" not in dists and "triton" not in dists

    _, url = run_container(image)
    png = (image_files / "digit-3.png").read_bytes()
    r = httpx.post(f"{url}/predict", files={"file": ("digit-3.png", png, "image/png")},
                   timeout=60)
    assert r.status_code == 200, r.text
    expected = mlem.apply(torch_models["cnn"], str(image_files / "digit-3.png"))
    np.testing.assert_allclose(r.json(), expected.numpy(), atol=1e-5)
    assert check_http(url, mlem.load_meta(torch_models["cnn"]))  # the schema's example
    bad = httpx.post(f"{url}/predict", content=b"nope", headers={"Content-Type": "image/png"})
    assert bad.status_code == 400 and bad.json()["expected"] == "a PNG or JPEG image"


@pytest.mark.slow
@pytest.mark.docker
def test_mlp_image_answers_tensor_json_and_npy_bodies(torch_models, dl_image, run_container):
    need("torch")
    import torch

    model = torch_models["mlp"]
    _, url = run_container(dl_image(model, "mlp").tags[0])
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((5, 4)).astype("float32"))
    expected = mlem.apply(model, x).numpy()  # in process
    r = httpx.post(f"{url}/predict", json={"data": x.tolist()}, timeout=60)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json(), expected, rtol=0, atol=1e-6)
    buf = io.BytesIO()
    np.save(buf, x.numpy())
    r = httpx.post(f"{url}/predict", content=buf.getvalue(), timeout=60,
                   headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-npy", r.text
    np.testing.assert_allclose(np.load(io.BytesIO(r.content)), expected, rtol=0, atol=1e-6)
    with HTTPClient(url, binary_rows=1) as client:  # every batch as .npy both ways
        answer = client.predict(x)
        assert isinstance(answer, torch.Tensor) and answer.dtype == torch.float32
        np.testing.assert_allclose(answer.numpy(), expected, rtol=0, atol=1e-6)
    with HTTPClient(url) as client:  # a small batch as JSON
        np.testing.assert_allclose(client.predict(x[:2]).numpy(), expected[:2], rtol=0,
                                   atol=1e-6)
    assert np.asarray(check_http(url, mlem.load_meta(model))).shape == (1, 3)
    bad = httpx.post(f"{url}/predict", json={"data": [[1.0, 2.0]]}, timeout=60)
    assert bad.status_code == 400 and "(n, 4)" in bad.text, bad.text


@pytest.mark.slow
@pytest.mark.docker
def test_text_classifier_image_loads_from_its_files_only(hf_models, docker_client, dl_image,
                                                         run_container):
    need("transformers")
    model = hf_models["clf"]
    built = dl_image(model, "clf")
    env = docker_client.images.get(built.image_id).attrs["Config"]["Env"]
    assert "HF_HUB_OFFLINE=1" in env
    # even with the offline switch turned off and a hub address that refuses connections,
    # the pipeline loads from the image's files and caches nothing
    container, url = run_container(built.tags[0], env={
        "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HOME": "/tmp/hf-home"})
    texts = ["good movie", "awful film", "the movie is not bad"]
    expected = mlem.apply(model, texts)  # in process
    r = httpx.post(f"{url}/predict", json={"data": texts}, timeout=60)
    assert r.status_code == 200, r.text
    assert [x["label"] for x in r.json()] == [x["label"] for x in expected]
    np.testing.assert_allclose([x["score"] for x in r.json()],
                               [x["score"] for x in expected], rtol=1e-5)
    with HTTPClient(url) as client:
        answer = client.predict(texts)
        assert [x["label"] for x in answer] == [x["label"] for x in expected]
    assert check_http(url, mlem.load_meta(model))[0]["label"] in ("NEG", "POS")
    r = httpx.post(f"{url}/predict", json={"data": [1, 2]}, timeout=60)
    assert r.status_code == 400 and r.json()["expected"] == "str"
    cached = container.exec_run(["ls", "/tmp/hf-home/hub"])
    assert cached.exit_code != 0, cached.output.decode()  # no hub cache was written


@pytest.mark.slow
@pytest.mark.docker
def test_wav_function_image_answers_wav_bodies(saved_bark, clips, dl_image, run_container,
                                               tmp_path):
    from tests.helpers import dlmodels

    _, url = run_container(dl_image(saved_bark, "bark").tags[0])
    # a function of the standard library only: an image without torch or transformers
    reqs = (tmp_path / "ctx-bark" / "requirements.txt").read_text()
    assert "torch" not in reqs and "transformers" not in reqs, reqs
    wav = (clips / "clip-2.wav").read_bytes()
    expected = mlem.apply(saved_bark, str(clips / "clip-2.wav"))  # in process
    assert expected == dlmodels.bark(wav) and expected["says"] == "woof"
    for body in (dict(content=wav, headers={"Content-Type": "audio/wav"}),
                 dict(files={"file": ("clip-2.wav", wav, "audio/wav")})):
        r = httpx.post(f"{url}/predict", timeout=60, **body)
        assert r.status_code == 200 and r.json() == expected, r.text
    with HTTPClient(url) as client:
        quiet = (clips / "clip-0.wav").read_bytes()
        assert client.predict(quiet) == mlem.apply(saved_bark, str(clips / "clip-0.wav"))
    assert check_http(url, mlem.load_meta(saved_bark))["says"] == "..."  # a silent example
    r = httpx.post(f"{url}/predict", content=b"not audio at all",
                   headers={"Content-Type": "audio/wav"}, timeout=60)
    assert r.status_code == 400 and r.json()["expected"] == "audio/wav bytes"
