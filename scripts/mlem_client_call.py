#!/usr/bin/env python
"""Call a model server with REAL MLEM's own client and print the results.

Run with the side venv that has mlem==0.4.14 (see scripts/make_mlem_fixtures.py):

    MLEM_NO_ANALYTICS=true /tmp/mlem-venv/bin/python scripts/mlem_client_call.py http://127.0.0.1:8080

It builds ``mlem.runtime.client.HTTPClient(host, port)`` (which first fetches
``GET /interface.json``), calls ``predict`` and ``predict_proba`` with the
first 5 iris rows as a pandas DataFrame with the columns sepal_length,
sepal_width, petal_length, petal_width (float64), and prints one JSON object:

    {"url": ..., "methods": [...], "predict": [...], "predict_proba": [[...]]}

Methods the server does not expose are reported under "missing" instead; a
call that fails is reported under "errors" (type and message) and the exit
status is 1. Exit status 2 means the client could not even be created.
"""

import json
import os
import sys
from urllib.parse import urlsplit

os.environ.setdefault("MLEM_NO_ANALYTICS", "true")

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_FIRST5 = [
    [5.1, 3.5, 1.4, 0.2],
    [4.9, 3.0, 1.4, 0.2],
    [4.7, 3.2, 1.3, 0.2],
    [4.6, 3.1, 1.5, 0.2],
    [5.0, 3.6, 1.4, 0.2],
]


def jsonable(obj):
    import numpy as np
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="records")
    if isinstance(obj, (pd.Series, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return [jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    return obj


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    import pandas as pd
    from mlem.runtime.client import HTTPClient

    url = argv[1].rstrip("/")
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.port is not None:
        client = HTTPClient(host=parts.hostname, port=parts.port)
    else:  # no port: keep the scheme so HTTPClient does not add one
        client = HTTPClient(host=f"{parts.scheme}://{parts.hostname}", port=None)

    out = {"url": client.base_url, "methods": [], "missing": [], "errors": {}}
    try:
        out["methods"] = sorted(client.methods)
    except Exception as e:
        out["errors"]["interface"] = {"type": type(e).__name__, "message": str(e)}
        print(json.dumps(out))
        return 2

    df = pd.DataFrame(IRIS_FIRST5, columns=COLUMNS, dtype="float64")
    for method in ("predict", "predict_proba"):
        if method not in client.methods:
            out["missing"].append(method)
            continue
        try:
            out[method] = jsonable(getattr(client, method)(df))
        except Exception as e:
            out["errors"][method] = {"type": type(e).__name__, "message": str(e)}
    print(json.dumps(out))
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
