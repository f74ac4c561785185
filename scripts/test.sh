#!/usr/bin/env bash
# Run the test suite on a fresh machine: installs the project, a Docker engine with local
# base images and an image registry, the real MLEM 0.4.14 and schemathesis in side venvs, then
# pytest.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k serve   # extra arguments go to pytest
#
# Services started here (dockerd, docker-registry) are stopped by PID on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/bootstrap.sh

cleanup() { bash scripts/docker-env.sh stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
echo "test: starting the Docker engine, base images and registry ..." >&2
out="$(bash scripts/docker-env.sh all)"
eval "$out"

echo "test: preparing the MLEM 0.4.14 side venv ..." >&2
MLEM_SIDE_VENV="$(bash scripts/mlem-side-venv.sh)"
export MLEM_SIDE_VENV

echo "test: preparing the schemathesis side venv ..." >&2
SCHEMATHESIS_VENV="$(bash scripts/schemathesis-venv.sh)"
export SCHEMATHESIS_VENV

export DVC_NO_ANALYTICS=1 MLEM_NO_ANALYTICS=true PREFECT_SERVER_ANALYTICS_ENABLED=false
export PYTHONDONTWRITEBYTECODE=1
.venv/bin/python -m pytest -p no:cacheprovider "$@"
