"""Fixtures for the deep-learning tests (loaded by conftest.py): saved PyTorch, transformers
and audio models, image and audio files, a model served by a real uvicorn server, and
Docker images of saved models (``dl_image``, torch from a local wheelhouse).

Models are tiny and randomly initialised (``tests/helpers/dlmodels.py``); nothing is
downloaded (``HF_HUB_OFFLINE=1``). Where torch or transformers is missing the tests skip,
or fail where ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import skip_or_fail

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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


def needs_torch(model: str) -> bool:
    """Whether a saved model requires torch (its image then installs the CPU wheel)."""
    import mlem_lib.api as mlem

    return "torch" in {r.module for r in mlem.load_meta(model).python_requirements()}


def need(module: str) -> None:
    """Skip (or fail under CI) when ``module`` is not installed."""
    from mlem_lib.extras import available

    if not available(module):
        skip_or_fail(f"{module} is not installed (bash scripts/bootstrap.sh installs it)")


@pytest.fixture(scope="session")
def torch_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Saved PyTorch models: ``mlp`` (4 features -> 3 scores) and ``cnn`` (1x28x28 images ->
    10 scores), each saved with a tensor sample; name -> path."""
    need("torch")
    import torch

    import mlem_lib.api as mlem
    from tests.helpers import dlmodels

    root = tmp_path_factory.mktemp("torch_models")
    out = {"mlp": str(root / "mlp"), "cnn": str(root / "cnn")}
    mlem.save(dlmodels.mlp(), out["mlp"], sample_data=torch.randn(8, 4))
    mlem.save(dlmodels.cnn(), out["cnn"], sample_data=torch.rand(4, 1, 28, 28))
    return out


@pytest.fixture(scope="session")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of five 28x28 grayscale PNG files (``digit-0.png`` ...), and a JPEG."""
    need("PIL")
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(
            folder / f"digit-{i}.png")
    Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).save(
        folder / "colour.jpg")
    return folder


@pytest.fixture(scope="session")
def saved_bark(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The 'dog bark translator' (a function over WAV bytes) saved with a WAV sample."""
    import mlem_lib.api as mlem
    from tests.helpers import dlmodels

    path = str(tmp_path_factory.mktemp("audio_models") / "bark")
    mlem.save(dlmodels.bark, path, sample_data=dlmodels.wav_bytes())
    return path


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``clip-0.wav`` (quiet), ``clip-1.wav`` and ``clip-2.wav`` (loud)."""
    from tests.helpers import dlmodels

    folder = tmp_path_factory.mktemp("clips")
    for i, amplitude in enumerate((0.1, 0.5, 0.9)):
        (folder / f"clip-{i}.wav").write_bytes(dlmodels.wav_bytes(amplitude=amplitude))
    return folder


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Saved transformers models: ``clf`` (text-classification pipeline), ``fe``
    (feature-extraction pipeline) and ``pair`` ((BertForSequenceClassification, tokenizer)),
    each saved with two texts as the sample; name -> path."""
    need("transformers")
    import mlem_lib.api as mlem
    from tests.helpers import dlmodels

    root = tmp_path_factory.mktemp("hf_models")
    texts = ["good movie", "the film is not great"]
    out = {name: str(root / name) for name in ("clf", "fe", "pair")}
    mlem.save(dlmodels.text_classifier(), out["clf"], sample_data=texts)
    mlem.save(dlmodels.feature_extractor(), out["fe"], sample_data=texts)
    mlem.save(dlmodels.text_pair(), out["pair"], sample_data=texts)
    return out


@pytest.fixture
def uvicorn_app() -> Iterator[Callable[[str], str]]:
    """``serve(path)`` -> base URL: the saved model served by a real uvicorn server on
    127.0.0.1 (port from the OS) in a thread of this process; stopped at teardown."""
    import uvicorn

    from mlem_lib.runner import LoadedModel
    from mlem_lib.serve.app import create_app
    from mlem_lib.serve.settings import ServerSettings

    servers: list[tuple[Any, threading.Thread]] = []

    def serve(path: str) -> str:
        app = create_app(LoadedModel.load(path), ServerSettings())
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def dl_image(docker_client: Any, docker_base_image: str,
             tmp_path: Path) -> Iterator[Callable[[str, str], Any]]:
    """``build(model, kind)`` -> the built :class:`~mlem_lib.build.docker.DockerImage` of a
    saved model, tagged ``mlem-test-<kind>:<random>``, on the test base image, torch from the
    local wheelhouse when the model needs it; prints its size and build time.

    At teardown only the tag is removed (``noprune``): the layers below the model's (the
    venv, torch, the requirements) stay in the engine's cache for the next build of the
    same kind, which then rebuilds only the model layers.
    """
    import mlem_lib.api as mlem

    tags: list[str] = []

    def build(model: str, kind: str) -> Any:
        image = f"mlem-test-{kind}:{uuid.uuid4().hex[:10]}"
        tags.append(image)
        lines: list[str] = []
        wheels = torch_wheelhouse() if needs_torch(model) else None
        start = time.monotonic()
        built = mlem.build(model, "docker", {"image": image, "base": docker_base_image,
                                             "wheelhouse": wheels,
                                             "context_dir": str(tmp_path / f"ctx-{kind}")},
                           progress=lines.append)
        cached = sum(1 for line in lines if "Using cache" in line)
        print(f"\n{kind} image: {(built.size or 0) / 1e6:.0f} MB, built in "
              f"{time.monotonic() - start:.0f} s ({cached} cached steps)")
        assert not any("nvidia" in line.lower() for line in lines), "a CUDA wheel was fetched"
        return built

    yield build
    for image in tags:
        with contextlib.suppress(Exception):  # a failed build left no image
            docker_client.images.remove(image, force=True, noprune=True)
