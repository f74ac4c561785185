#!/usr/bin/env bash
# Create (idempotently) a side venv with schemathesis, used by tests/test_fuzz_http.py to
# fuzz served models through their OpenAPI document. It lives apart from the project's venv
# so that its pins (hypothesis, jsonschema, werkzeug...) never move the project's.
#
#   scripts/schemathesis-venv.sh     # creates ${SCHEMATHESIS_VENV:-<repo>/.venv-schemathesis}
#
# Prints the venv path on stdout. The pin lives in scripts/peer-venv.sh.
set -euo pipefail
exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/peer-venv.sh" schemathesis
