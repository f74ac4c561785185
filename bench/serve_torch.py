"""The torch rows of ``bench/serve.py``: PyTorch models served by ``mlem serve``.

A small MLP (4 features -> 16 -> 3) and a small CNN (1x28x28 images -> 10 scores), each
saved with a tensor sample (so served as TorchScript), one request at a time from one
client: one row and 64 rows, as JSON (nested lists) and as ``.npy`` bodies (answers in
the same format), next to the raw in-process ``forward`` of the same loaded model under
``torch.inference_mode()`` in the same run. The issue 19 target: one-row p50 within 1 ms of
the raw forward.

    .venv/bin/python bench/serve.py --peers torch      # only these rows
    .venv/bin/python bench/serve_torch.py [--quick]    # the same, standalone
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

TARGET_MS = 1.0


def _bodies(x: Any) -> dict[str, tuple[bytes, dict[str, str]]]:
    buf = io.BytesIO()
    np.save(buf, x.numpy())
    return {"json": (orjson.dumps({"data": x.numpy()}, option=orjson.OPT_SERIALIZE_NUMPY),
                     {"Content-Type": "application/json"}),
            "npy": (buf.getvalue(), {"Content-Type": "application/x-npy",
                                     "Accept": "application/x-npy"})}


def raw_forward_ms(model: Any, x: Any, repeats: int) -> float:
    """Median ms of ``model(x)`` under inference mode (the model as the server loads it)."""
    import torch

    times = []
    with torch.inference_mode():
        for _ in range(20):
            model(x)
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def torch_cells(tmp: Path, scale: float = 1.0) -> list[dict[str, Any]]:
    """Serve the MLP and the CNN and measure every cell; returns the cells."""
    import httpx
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import mlem_lib.api as mlem
    from bench.serve import Server, free_port, load
    from tests.helpers import dlmodels

    models = {"MLP": (dlmodels.mlp(), torch.randn(64, 4)),
              "CNN": (dlmodels.cnn(), torch.rand(64, 1, 28, 28))}
    cells: list[dict[str, Any]] = []
    for name, (module, x) in models.items():
        path = tmp / f"torch-{name.lower()}"
        mlem.save(module, str(path), sample_data=x[:8])
        loaded = mlem.load(str(path))
        port = free_port()
        server = Server([sys.executable, "-m", "mlem_lib.cli", "serve", str(path), "--port",
                         str(port)], port, "/health", tmp / f"torch-{name}.log")
        try:
            for rows in (1, 64):
                batch = x[:rows]
                raw = raw_forward_ms(loaded, batch, 300 if rows == 1 else 100)
                expected = module(batch).detach().numpy()
                for fmt, (body, headers) in _bodies(batch).items():
                    answer = httpx.post(f"{server.url}/predict", content=body, headers=headers)
                    got = (np.asarray(answer.json()) if fmt == "json"
                           else np.load(io.BytesIO(answer.content)))
                    if answer.status_code != 200 or not np.allclose(got, expected, atol=1e-4):
                        raise RuntimeError(f"{name} {rows} rows {fmt}: wrong answer "
                                           f"({answer.status_code})")
                    count = max(50, int((1500 if rows == 1 else 400) * scale))
                    res = load(f"{server.url}/predict", body, headers, 1, count)
                    cell = {"model": name, "rows": rows, "body": fmt, "requests": res.requests,
                            "rps": res.rps, "p50": res.p50, "p99": res.p99, "raw_ms": raw}
                    cells.append(cell)
                    print(_row(cell), file=sys.stderr, flush=True)
        finally:
            server.stop()
    return cells


def _row(c: dict[str, Any]) -> str:
    over = c["p50"] - c["raw_ms"]
    mark = ""
    if c["rows"] == 1:
        mark = " met" if over <= TARGET_MS else " NOT met"
    return (f"| {c['model']} | {c['rows']} | {c['body']} | {c['requests']} | {c['rps']:.0f} | "
            f"{c['p50']:.2f} | {c['p99']:.2f} | {c['raw_ms']:.3f} | {over:+.2f}{mark} |")


def print_torch(cells: list[dict[str, Any]]) -> None:
    """The torch table; the last column is p50 minus the raw forward (target: <= 1 ms for
    one row)."""
    print("| torch model (mlem_lib, TorchScript) | rows | body | requests | req/s | p50 ms | "
          "p99 ms | raw forward ms | p50 - raw (1 row: <= 1 ms) |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cell in cells:
        print(_row(cell))


def main() -> int:
    import shutil
    import tempfile

    quick = "--quick" in sys.argv[1:]
    tmp = Path(tempfile.mkdtemp(prefix="mlem-bench-torch-"))
    try:
        print_torch(torch_cells(tmp, 0.25 if quick else 1.0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
