#!/usr/bin/env bash
# Create (idempotently) a side venv with schemathesis, used by tests/test_fuzz_http.py to
# fuzz served models through their OpenAPI document. It lives apart from the project's venv
# so that its pins (hypothesis, jsonschema, werkzeug...) never move the project's.
#
#   scripts/schemathesis-venv.sh     # creates ${SCHEMATHESIS_VENV:-<repo>/.venv-schemathesis}
#
# Prints the venv path on stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SCHEMATHESIS_VENV:-$ROOT/.venv-schemathesis}"
PINS=(schemathesis==4.32.5)
CHECK='import schemathesis; assert schemathesis.__version__ == "4.32.5"'

ok() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" >/dev/null 2>&1; }

if ok; then
    echo "$VENV"
    exit 0
fi
echo "creating the schemathesis side venv at $VENV ..." >&2
PY="${SCHEMATHESIS_PYTHON:-$(command -v python3.11 || command -v python3)}"
if command -v uv >/dev/null 2>&1; then
    uv venv --quiet --python "$PY" "$VENV" >&2
    uv pip install --quiet --python "$VENV/bin/python" "${PINS[@]}" >&2
elif "$PY" -m uv --version >/dev/null 2>&1; then
    "$PY" -m uv venv --quiet --python "$PY" "$VENV" >&2
    "$PY" -m uv pip install --quiet --python "$VENV/bin/python" "${PINS[@]}" >&2
else
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}" >&2
fi
if ! ok; then
    echo "error: the schemathesis side venv at $VENV does not import (check: $CHECK)" >&2
    exit 1
fi
echo "$VENV"
