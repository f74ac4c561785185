#!/usr/bin/env bash
# The main job: train an iris model in a Prefect flow, register it in a git registry
# (binary in DVC), package it, roll it out to the local target and call it.
# Runs on Prefect's embedded server with a private PREFECT_HOME.
#
#   bash scripts/main.sh                    # workspace in ./demo-workspace
#   MLEM_DEMO_DOCKER=1 bash scripts/main.sh # also start a Docker engine and use containers
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
start=$(date +%s)

bash scripts/bootstrap.sh

if [ "${MLEM_DEMO_DOCKER:-0}" = "1" ]; then
    out="$(bash scripts/docker-env.sh all)"
    eval "$out"
fi

export PREFECT_HOME="${PREFECT_HOME:-$ROOT/.prefect-demo}"
mkdir -p "$PREFECT_HOME"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120
export DVC_NO_ANALYTICS=1
unset PREFECT_API_URL

.venv/bin/python -m flows.train_iris "$@"
echo "main: finished in $(( $(date +%s) - start )) s" >&2
