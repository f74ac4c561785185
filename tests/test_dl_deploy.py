"""Deep-learning models packaged and deployed for real: a local deployment (a server
process) whose smoke request is built from the saved schema (a tensor, an image, a WAV
file, texts); a pip package installed in a fresh venv; a Docker image of a torch model
built from a wheelhouse (no GPU wheels downloaded), serving PNG uploads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

import mlem_lib.api as mlem
from mlem_lib.deploy import deploy
from mlem_lib.deploy.smoke import SmokeRequest, check_http
from tests._fixtures.deeplearning import need
from tests.conftest import free_port, skip_or_fail


def torch_wheelhouse() -> str:
    """The folder holding a CPU torch wheel (pip's find-links on this machine kind)."""
    import importlib.metadata

    version = importlib.metadata.version("torch")
    folders = [os.environ.get("MLEM_TORCH_FIND_LINKS", ""), os.environ.get("PIP_FIND_LINKS", "")]
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.find-links"],
                          capture_output=True, text=True)
    folders.append(proc.stdout)
    for folder in " ".join(folders).split():
        folder = folder.removeprefix("file://")
        if os.path.isdir(folder) and any(n.startswith(f"torch-{version}") and n.endswith(".whl")
                                         for n in os.listdir(folder)):
            return folder
    skip_or_fail(f"no wheel of torch {version} in pip's find-links: the torch image needs it")
    raise AssertionError("unreachable")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cnn", "bark", "clf"])
def test_local_deployment_smoke_request_built_from_the_schema(kind, declare, removed_after,
                                                              request):
    if kind == "cnn":
        model = request.getfixturevalue("torch_models")["cnn"]
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
    if kind == "cnn":
        assert np.asarray(answer.json()).shape == (1, 10)
        assert np.asarray(smoke.body["data"]).shape == (1, 1, 28, 28)
    elif kind == "bark":
        assert answer.json()["says"] == "..."  # the example is a silent WAV file
    else:
        assert answer.json()[0]["label"] in ("NEG", "POS")


@pytest.mark.slow
def test_pip_package_of_a_torch_model_in_a_fresh_venv(torch_models, tmp_path):
    import shutil

    wheels = torch_wheelhouse()
    package = mlem.build(torch_models["mlp"], "pip", {"target": str(tmp_path / "dist"),
                                                      "package_name": "tiny-mlp"})
    assert any(r.startswith("torch==") for r in package.requirements)
    venv = tmp_path / "venv"
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
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
                                                          docker_client, docker_base_image,
                                                          run_container, tmp_path):
    need("torch")
    wheels = torch_wheelhouse()
    image = f"mlem-test-cnn:{uuid.uuid4().hex[:10]}"
    lines: list[str] = []
    start = time.monotonic()
    try:
        built = mlem.build(torch_models["cnn"], "docker", {
            "image": image, "base": docker_base_image, "wheelhouse": wheels,
            "context_dir": str(tmp_path / "ctx")}, progress=lines.append)
        seconds = time.monotonic() - start
        dockerfile = (tmp_path / "ctx" / "Dockerfile").read_text()
        assert "--no-index --find-links /tmp/mlem/wheelhouse" in dockerfile
        assert "download.pytorch.org" not in dockerfile  # the wheelhouse has torch
        assert not any("nvidia" in line.lower() for line in lines), "a CUDA wheel was fetched"
        print(f"\ntorch image: {built.size / 1e6:.0f} MB, built in {seconds:.0f} s")
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
    finally:
        import contextlib

        with contextlib.suppress(Exception):
            docker_client.images.remove(image, force=True)
