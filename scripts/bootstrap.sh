#!/usr/bin/env bash
# Install the project into .venv from the lock file (idempotent, a few seconds when warm).
#
#   bash scripts/bootstrap.sh
#
# Needs only python3 >= 3.11 and access to PyPI; installs uv with pip when it is missing.
#
# PyTorch: PyPI's torch for x86-64 Linux is a CUDA build (a 5.7 GB venv). The extras that need
# torch (torch, transformers, ...) are therefore not synced from the lock; torch is installed as
# a CPU build of the locked release, from the first of:
#   1. a wheel torch-<version>+cpu-*.whl in pip's find-links folders (`pip config list`,
#      $PIP_FIND_LINKS) or in $MLEM_TORCH_FIND_LINKS;
#   2. PyTorch's CPU index ($MLEM_TORCH_INDEX, default https://download.pytorch.org/whl/cpu);
#   3. the package index itself (CPU on macOS and aarch64, CUDA on x86-64 Linux: a warning
#      says so). MLEM_TORCH=skip leaves torch and transformers out altogether.
# The other packages of those extras come from the lock, pinned, without torch's CUDA wheels.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${MLEM_PYTHON:-$(command -v python3.11 || command -v python3)}"
# the real interpreter, not a pyenv shim: uv recreates a venv whose Python is not the one asked
PY="$("$PY" -c 'import sys; print(sys.executable)')"
if ! "$PY" -m uv --version >/dev/null 2>&1; then
    echo "bootstrap: installing uv with pip ..." >&2
    "$PY" -m pip install --quiet --disable-pip-version-check uv >&2
fi
UV=("$PY" -m uv)
VENV_PY="$ROOT/.venv/bin/python"
# the extras that pull in torch (torch, transformers, and any other that needs it), from the lock
mapfile -t DL_EXTRAS < <("$PY" - <<'EOF'
import tomllib

with open("uv.lock", "rb") as f:
    packages = {p["name"]: p for p in tomllib.load(f)["package"]}
project = next(p for p in packages.values() if p.get("source", {}).get("editable") == ".")


def needs_torch(deps, seen):
    for dep in deps:
        name = dep["name"]
        if name == "torch":
            return True
        key = (name, tuple(dep.get("extra", ())))
        if key in seen or name not in packages:
            continue
        seen.add(key)
        pkg = packages[name]
        more = list(pkg.get("dependencies", []))
        for extra in dep.get("extra", ()):
            more += pkg.get("optional-dependencies", {}).get(extra, [])
        if needs_torch(more, seen):
            return True
    return False


for extra, deps in project.get("optional-dependencies", {}).items():
    if needs_torch(deps, set()):
        print(extra)
EOF
)

echo "bootstrap: syncing .venv from uv.lock ..." >&2
# --inexact: keep the CPU torch (and what came with it) that a previous run installed
no_extra=()
for extra in "${DL_EXTRAS[@]}"; do no_extra+=(--no-extra "$extra"); done
# bytecode compiled once here: every process (servers, workers, CLI runs in tests) then
# imports sklearn, pandas or Prefect from .pyc instead of compiling them again (seconds each)
"${UV[@]}" sync --frozen --all-extras "${no_extra[@]}" --inexact --python "$PY" --quiet \
    --compile-bytecode >&2

if [ "${MLEM_TORCH:-}" = "skip" ]; then
    echo "bootstrap: MLEM_TORCH=skip: no torch, no transformers" >&2
    echo "bootstrap: ready ($("$VENV_PY" --version))" >&2
    exit 0
fi

# the deep-learning extras from the lock, minus torch and the CUDA packages it pulls in
locked="$(mktemp)"
trap 'rm -f "$locked"' EXIT
extras=()
for extra in "${DL_EXTRAS[@]}"; do extras+=(--extra "$extra"); done
"${UV[@]}" export --frozen --no-hashes --no-header --no-annotate --no-emit-project --no-dev \
    --format requirements.txt "${extras[@]}" --no-emit-package torch \
    | grep -v -E '^(nvidia-|cuda-|triton[= ])' >"$locked"
"${UV[@]}" pip install --python "$VENV_PY" --no-deps --quiet -r "$locked" >&2

torch_version="$("$PY" - <<'EOF'
import tomllib
with open("uv.lock", "rb") as f:
    lock = tomllib.load(f)
print(next(p["version"] for p in lock["package"] if p["name"] == "torch"))
EOF
)"
installed="$("$VENV_PY" - <<'EOF' 2>/dev/null || true
import importlib.metadata as m
print(m.version("torch"))
EOF
)"
if [ "$installed" = "${torch_version}+cpu" ]; then
    echo "bootstrap: torch $installed (CPU) is installed" >&2
else
    links="${MLEM_TORCH_FIND_LINKS:-} ${PIP_FIND_LINKS:-} $("$PY" -m pip config get global.find-links 2>/dev/null || true)"
    wheel_dir=""
    for dir in $links; do
        dir="${dir#file://}"
        if compgen -G "$dir/torch-${torch_version}+cpu-*.whl" >/dev/null; then
            wheel_dir="$dir"
            break
        fi
    done
    if [ -n "$wheel_dir" ]; then
        echo "bootstrap: torch ${torch_version}+cpu from $wheel_dir ..." >&2
        "${UV[@]}" pip install --python "$VENV_PY" --quiet --find-links "$wheel_dir" \
            "torch==${torch_version}+cpu" >&2
    else
        index="${MLEM_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
        echo "bootstrap: no local torch ${torch_version}+cpu wheel; trying $index ..." >&2
        if ! UV_HTTP_TIMEOUT=60 "${UV[@]}" pip install --python "$VENV_PY" --quiet \
                --index-url "$index" "torch==${torch_version}" >&2; then
            echo "bootstrap: WARNING: $index did not serve torch; installing" \
                 "torch==${torch_version} from the package index (on x86-64 Linux that is" \
                 "a CUDA build of several GB)" >&2
            "${UV[@]}" pip install --python "$VENV_PY" --quiet "torch==${torch_version}" >&2
        fi
    fi
fi
echo "bootstrap: ready ($("$VENV_PY" --version), torch $("$VENV_PY" -c \
    'import importlib.metadata as m; print(m.version("torch"))'))" >&2
