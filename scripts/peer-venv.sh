#!/usr/bin/env bash
# Create (idempotently) the side venv of one serving peer that bench/serve.py measures next
# to mlem_lib. Each peer gets its own venv, never the project's: their pins conflict.
#
#   scripts/peer-venv.sh bentoml     # ${BENCH_BENTOML_VENV:-<repo>/.venv-bentoml}
#   scripts/peer-venv.sh mlflow      # ${BENCH_MLFLOW_VENV:-<repo>/.venv-mlflow}
#
# Prints the venv path on stdout. The bench only, never CI. MLEM 0.4.14 has its own
# script (scripts/mlem-side-venv.sh), shared with the compatibility tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEER="${1:-}"
case "$PEER" in
    bentoml)
        VENV="${BENCH_BENTOML_VENV:-$ROOT/.venv-bentoml}"
        PINS=(bentoml==1.4.40 scikit-learn==1.9.1 pandas numpy httpx)
        CHECK='import bentoml, sklearn; assert bentoml.__version__ == "1.4.40"'
        ;;
    mlflow)
        VENV="${BENCH_MLFLOW_VENV:-$ROOT/.venv-mlflow}"
        PINS=(mlflow==3.17.2 scikit-learn==1.9.1 pandas numpy)
        CHECK='import mlflow, mlflow.sklearn, mlflow.pyfunc.scoring_server, sklearn; assert mlflow.__version__ == "3.17.2"'
        ;;
    *)
        echo "usage: $0 bentoml|mlflow" >&2
        exit 2
        ;;
esac
export BENTOML_DO_NOT_TRACK=true MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1

ok() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" >/dev/null 2>&1; }

if ok; then
    echo "$VENV"
    exit 0
fi
echo "creating the $PEER side venv at $VENV ..." >&2
PY="${PEER_SIDE_PYTHON:-$(command -v python3.11 || command -v python3)}"
if command -v uv >/dev/null 2>&1; then
    uv venv --quiet --python "$PY" "$VENV" >&2
    uv pip install --quiet --python "$VENV/bin/python" "${PINS[@]}" >&2
else
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}" >&2
fi
if ! ok; then
    echo "error: the $PEER side venv at $VENV does not import (check: $CHECK)" >&2
    exit 1
fi
echo "$VENV"
