#!/usr/bin/env bash
# Create (idempotently) a side venv with the real MLEM 0.4.14, used by the compatibility
# tests (its HTTPClient calls our server) and by bench/serve.py (its server, for comparison).
#
#   scripts/mlem-side-venv.sh            # creates ${MLEM_SIDE_VENV:-<repo>/.venv-mlem}
#   MLEM_SIDE_VENV=/tmp/mlem scripts/mlem-side-venv.sh
#
# Prints the venv path on stdout. The pins live in scripts/peer-venv.sh.
set -euo pipefail
exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/peer-venv.sh" mlem
