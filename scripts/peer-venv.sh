#!/usr/bin/env bash
# Create (idempotently) the side venv of one serving peer that bench/serve.py measures next
# to mlem_lib. Each peer gets its own venv, never the project's: their pins conflict.
#
#   scripts/peer-venv.sh bentoml     # ${BENCH_BENTOML_VENV:-<repo>/.venv-bentoml}
#   scripts/peer-venv.sh mlflow      # ${BENCH_MLFLOW_VENV:-<repo>/.venv-mlflow}
#   scripts/peer-venv.sh mlem        # ${MLEM_SIDE_VENV:-<repo>/.venv-mlem}
#   scripts/peer-venv.sh schemathesis  # ${SCHEMATHESIS_VENV:-<repo>/.venv-schemathesis}
#   scripts/peer-venv.sh mlem-objects  # ${MLEM_OBJECTS_VENV:-<repo>/.venv-mlem-objects}
#
# Prints the venv path on stdout. BentoML and MLflow are for the bench only, never CI;
# MLEM 0.4.14 is also used by the compatibility tests (scripts/mlem-side-venv.sh).
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
    mlem)  # MLEM 0.4.14 only imports with exactly these pins
        VENV="${MLEM_SIDE_VENV:-$ROOT/.venv-mlem}"
        PINS=(mlem==0.4.14 isort==5.12.0 pydantic==1.10.12 numpy==1.26.4 pandas==2.0.3
              scikit-learn==1.3.2 fastapi==0.99.1 uvicorn==0.23.2 typer==0.9.0 click==8.1.7
              httpx)
        CHECK='import mlem, mlem.api, mlem.runtime.client, sklearn, httpx; assert mlem.__version__.startswith("0.4.14")'
        ;;
    mlem-objects)  # MLEM 0.4.14 with its heroku/sagemaker/kubernetes extras: only for
                   # `scripts/make_mlem_fixtures.py project` (its deployment objects)
        VENV="${MLEM_OBJECTS_VENV:-$ROOT/.venv-mlem-objects}"
        PINS=(mlem==0.4.14 isort==5.12.0 pydantic==1.10.12 numpy==1.26.4 pandas==2.0.3
              scikit-learn==1.3.2 fastapi==0.99.1 uvicorn==0.23.2 typer==0.9.0 click==8.1.7
              httpx docker==7.2.0 boto3==1.44.8 sagemaker==2.168.0 kubernetes==36.0.0
              "python-dateutil<3")
        CHECK='import mlem.contrib.heroku.meta, mlem.contrib.sagemaker.meta, mlem.contrib.kubernetes.base; import mlem; assert mlem.__version__.startswith("0.4.14")'
        ;;
    schemathesis)  # not a peer: the fuzzer of tests/test_fuzz_http.py, kept out of .venv
        VENV="${SCHEMATHESIS_VENV:-$ROOT/.venv-schemathesis}"
        PINS=(schemathesis==4.32.5)
        CHECK='import schemathesis; assert schemathesis.__version__ == "4.32.5"'
        ;;
    *)
        echo "usage: $0 bentoml|mlflow|mlem|mlem-objects|schemathesis" >&2
        exit 2
        ;;
esac
export BENTOML_DO_NOT_TRACK=true MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1
export MLEM_NO_ANALYTICS=true

ok() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" >/dev/null 2>&1; }

if ok; then
    echo "$VENV"
    exit 0
fi
echo "creating the $PEER side venv at $VENV ..." >&2
PY="${PEER_SIDE_PYTHON:-${MLEM_SIDE_PYTHON:-$(command -v python3.11 || command -v python3)}}"
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
