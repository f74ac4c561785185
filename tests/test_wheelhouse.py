"""``mlem build MODEL docker-dir|docker --wheelhouse DIR``: the requirements layer installs from
a local folder of wheels before the package index, and torch models get torch in a step of
their own (the wheelhouse's, else PyTorch's CPU index), never PyPI's CUDA build. The image
built for real is in test_dl_deploy.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlem_lib.build.dockerfile import build_docker_dir
from mlem_lib.cli import main
from mlem_lib.errors import BuildError


def _wheel(folder: Path, name: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip is enough here


def test_torch_model_without_wheelhouse_gets_torch_from_the_cpu_index(torch_models, tmp_path):
    ctx = build_docker_dir(torch_models["mlp"], str(tmp_path / "ctx"))
    text = Path(ctx.dockerfile).read_text()
    torch_line = next(line for line in text.splitlines() if '"torch==' in line)
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_line
    assert text.index(torch_line) < text.index("COPY requirements.txt")
    assert not (tmp_path / "ctx" / "wheelhouse").exists()


def test_torch_index_empty_means_the_package_index_without_local_label(torch_models, tmp_path):
    ctx = build_docker_dir(torch_models["mlp"], str(tmp_path / "ctx"), torch_index="")
    text = Path(ctx.dockerfile).read_text()
    reqs = (tmp_path / "ctx" / "requirements.txt").read_text().split()
    assert "download.pytorch.org" not in text
    torch_req = next(r for r in reqs if r.startswith("torch=="))
    assert "+" not in torch_req  # PyPI never serves a local version label such as +cpu


def test_cli_wheelhouse_with_torch_installs_it_offline_first(torch_models, tmp_path, capsys):
    import torch

    wheels = tmp_path / "wheels"
    _wheel(wheels, f"torch-{torch.__version__}-cp311-cp311-manylinux_2_28_x86_64.whl")
    _wheel(wheels, "numpy-2.4.0-cp311-cp311-manylinux_2_28_x86_64.whl")
    ctx = tmp_path / "ctx"
    assert main(["build", torch_models["mlp"], "docker-dir", "--target", str(ctx),
                 "--wheelhouse", str(wheels)]) == 0
    text = (ctx / "Dockerfile").read_text()
    assert sorted(p.name for p in (ctx / "wheelhouse").iterdir()) == sorted(
        p.name for p in wheels.iterdir())
    assert "COPY wheelhouse/ /tmp/mlem/wheelhouse/" in text
    assert (f'pip install --no-cache-dir --no-deps --no-index --find-links /tmp/mlem/wheelhouse '
            f'"torch=={torch.__version__}"') in text
    assert "--no-index --find-links /tmp/mlem/wheelhouse -r /tmp/mlem/requirements.txt" in text
    assert "download.pytorch.org" not in text


def test_wheelhouse_from_the_environment(saved_rf, tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    _wheel(wheels, "scikit_learn-1.9.1-cp311-cp311-manylinux_2_28_x86_64.whl")
    monkeypatch.setenv("MLEM_WHEELHOUSE", str(wheels))
    ctx = build_docker_dir(saved_rf, str(tmp_path / "ctx"))
    text = Path(ctx.dockerfile).read_text()
    assert "--find-links /tmp/mlem/wheelhouse" in text and "torch" not in text


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "is not a folder"),
    (lambda p: p.mkdir(), "holds no wheel"),
])
def test_a_bad_wheelhouse_is_a_build_error_and_one_cli_line(saved_rf, tmp_path, capsys, make,
                                                            message):
    folder = tmp_path / "wheels"
    make(folder)
    with pytest.raises(BuildError, match=message):
        build_docker_dir(saved_rf, str(tmp_path / "ctx"), wheelhouse=str(folder))
    assert not (tmp_path / "ctx").exists()
    assert main(["build", saved_rf, "docker-dir", "--target", str(tmp_path / "ctx"),
                 "--wheelhouse", str(folder)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
