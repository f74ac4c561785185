"""PyTorch models exported to ONNX (issue 14): ``mlem build MODEL onnx`` runs
``torch.onnx.export`` and checks the twin against the model on the saved sample."""

from __future__ import annotations

import numpy as np
import pytest

import mlem_lib.api as mlem
from mlem_lib.errors import BuildError
from mlem_lib.extras import available
from mlem_lib.runner import LoadedModel
from tests.conftest import skip_or_fail


@pytest.fixture(scope="module")
def torch():
    if not (available("torch") and available("onnxruntime")):
        skip_or_fail("torch and onnxruntime are not installed (bash scripts/bootstrap.sh)")
    import torch

    return torch


def _mlp(torch):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3),
                               torch.nn.Softmax(dim=1))


def test_a_torch_model_exports_and_answers_like_the_model(torch, tmp_path):
    net = _mlp(torch)
    X = torch.rand(50, 4)
    mlem.save(net, str(tmp_path / "mlp"), sample_data=X)
    result = mlem.build(str(tmp_path / "mlp"), "onnx", {"target": str(tmp_path / "out")})
    native_meta, twin_meta = mlem.load_meta(str(tmp_path / "mlp")), mlem.load_meta(result.path)
    assert twin_meta.model_type.type == "onnx"
    assert twin_meta.method("predict") == native_meta.method("predict")
    parity = twin_meta.onnx_export["parity"]["predict"]
    assert parity["passed"] and parity["max_abs_diff"] < 1e-5
    assert twin_meta.onnx_export["converter"].startswith("torch.onnx")
    twin = LoadedModel.load(result.path)
    with torch.inference_mode():
        expected = net(X[:7]).numpy()
    answer = twin.call("predict", X[:7])
    assert isinstance(answer, torch.Tensor)  # the twin answers like the model
    np.testing.assert_allclose(answer.numpy(), expected, rtol=0, atol=1e-5)


def test_served_through_onnx_runtime_with_the_same_answers(torch, tmp_path, start_server):
    import httpx

    net = _mlp(torch)
    X = torch.rand(20, 4)
    path = str(tmp_path / "mlp")
    mlem.save(net, path, sample_data=X)
    server = start_server(path, "--runtime", "onnx",
                          env={"MLEM_ONNX_CACHE_DIR": str(tmp_path / "cache")})
    assert "answered by ONNX Runtime" in server.output()
    answer = httpx.post(f"{server.url}/predict", json={"data": X[:3].tolist()})
    assert answer.status_code == 200, answer.text
    with torch.inference_mode():
        np.testing.assert_allclose(answer.json(), net(X[:3]).numpy(), rtol=0, atol=1e-5)
    bad = httpx.post(f"{server.url}/predict", json={"data": [[1.0, 2.0]]})
    assert bad.status_code == 400, bad.text


def test_a_model_of_several_tensors_is_a_clear_build_error(torch, tmp_path):
    class Pair(torch.nn.Module):
        def forward(self, x):
            return x * 2, x + 1

    mlem.save(Pair(), str(tmp_path / "pair"), sample_data=torch.zeros(3, 2))
    with pytest.raises(BuildError, match="one tensor"):
        mlem.build(str(tmp_path / "pair"), "onnx", {"target": str(tmp_path / "out")})
