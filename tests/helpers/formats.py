"""Ask a served iris classifier for ``predict`` in every body format the server advertises.

Used for the servers of built pip packages and Docker images (issue 13): a format that is
advertised must work there, not only in the test process.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pandas as pd

from mlem_lib.data import media


def check_every_format(url: str, X: pd.DataFrame, model: Any) -> list[str]:
    """POST ``X`` to ``url`` in each request format and ask for each answer format; the
    predictions must equal ``model.predict``. Returns the media types exercised."""
    rows = X.head(7)
    expected = model.predict(rows).tolist()
    bodies = {
        media.JSON: media.dumps_json({"data": {"values": rows.to_dict(orient="records")}}),
        media.CSV: rows.to_csv(index=False).encode(),
        media.PARQUET: media.write_table(rows, media.PARQUET),
        media.NPY: media.write_npy(rows.to_numpy()),
    }
    interface = httpx.get(f"{url}/interface.json", trust_env=False, timeout=30).json()
    advertised = set(interface["meta"]["schemas"]["predict"]["media_types"]) if "meta" in \
        interface else set(bodies)
    assert advertised >= set(bodies), f"the server advertises only {sorted(advertised)}"
    for kind, body in bodies.items():
        for accept in (media.JSON, media.CSV, media.PARQUET, media.NPY):
            r = httpx.post(f"{url}/predict", content=body, trust_env=False, timeout=60,
                           headers={"Content-Type": kind, "Accept": accept})
            assert r.status_code == 200, (kind, accept, r.status_code, r.text[:500])
            assert _answer(r.content, accept) == expected, (kind, accept)
    from mlem_lib.client import HTTPClient

    many = pd.concat([X] * 8, ignore_index=True)  # >= 1000 rows: HTTPClient sends Parquet
    with HTTPClient(url) as client:
        got = client.predict(many)
    np.testing.assert_array_equal(np.asarray(got), model.predict(many))
    return sorted(bodies)


def _answer(body: bytes, kind: str) -> list[Any]:
    if kind == media.JSON:
        return list(media.loads_json(body))
    if kind == media.CSV:
        return pd.read_csv(io.BytesIO(body), header=None).iloc[:, 0].tolist()  # a vector
    if kind == media.PARQUET:
        return media.read_parquet(body).iloc[:, 0].tolist()
    return np.asarray(media.read_npy(body)).tolist()
