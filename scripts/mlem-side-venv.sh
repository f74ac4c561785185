#!/usr/bin/env bash
# Create (idempotently) a side venv with the real MLEM 0.4.14, used by the compatibility
# tests (its HTTPClient calls our server) and by bench/serve.py (its server, for comparison).
#
#   scripts/mlem-side-venv.sh            # creates ${MLEM_SIDE_VENV:-<repo>/.venv-mlem}
#   MLEM_SIDE_VENV=/tmp/mlem scripts/mlem-side-venv.sh
#
# Prints the venv path on stdout. MLEM 0.4.14 only imports with exactly these pins.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MLEM_SIDE_VENV:-$ROOT/.venv-mlem}"
PINS=(mlem==0.4.14 isort==5.12.0 pydantic==1.10.12 numpy==1.26.4 pandas==2.0.3
      scikit-learn==1.3.2 fastapi==0.99.1 uvicorn==0.23.2 typer==0.9.0 click==8.1.7 httpx)
export MLEM_NO_ANALYTICS=true

ok() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c \
    'import mlem, mlem.api, mlem.runtime.client, sklearn, httpx; assert mlem.__version__.startswith("0.4.14")' \
    >/dev/null 2>&1; }

if ok; then
    echo "$VENV"
    exit 0
fi
echo "creating the MLEM side venv at $VENV ..." >&2
PY="${MLEM_SIDE_PYTHON:-$(command -v python3.11 || command -v python3)}"
if command -v uv >/dev/null 2>&1; then
    uv venv --quiet --python "$PY" "$VENV" >&2
    uv pip install --quiet --python "$VENV/bin/python" "${PINS[@]}" >&2
else
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}" >&2
fi
if ! ok; then
    echo "error: the side venv at $VENV cannot import mlem 0.4.14" >&2
    exit 1
fi
echo "$VENV"
