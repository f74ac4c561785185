#!/usr/bin/env bash
# Install the project into .venv from the lock file (idempotent, a few seconds when warm).
#
#   bash scripts/bootstrap.sh
#
# Needs only python3 >= 3.11 and access to PyPI; installs uv with pip when it is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${MLEM_PYTHON:-$(command -v python3.11 || command -v python3)}"
if ! "$PY" -m uv --version >/dev/null 2>&1; then
    echo "bootstrap: installing uv with pip ..." >&2
    "$PY" -m pip install --quiet --disable-pip-version-check uv >&2
fi
echo "bootstrap: syncing .venv from uv.lock ..." >&2
"$PY" -m uv sync --frozen --all-extras --python "$PY" --quiet >&2
echo "bootstrap: ready ($("$ROOT/.venv/bin/python" --version))" >&2
