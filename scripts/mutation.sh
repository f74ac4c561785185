#!/usr/bin/env bash
# Mutation testing of the core (a bench-style run, not part of CI): mutmut 3 in a venv of its
# own (.venv-mutation: the project's locked dependencies plus mutmut; the project's .venv is not
# touched) mutates each group's modules in a scratch copy of the committed tree and runs the
# tests that exercise them. Prints killed/total per module and the survivors to look at.
#
#   bash scripts/mutation.sh                     # every group
#   bash scripts/mutation.sh storage deploy      # some groups: storage codecs deploy registry
#   MUTATION_CHILDREN=1 bash scripts/mutation.sh # fewer parallel test processes (default 2)
#   MUTATION_BUDGET=900 bash scripts/mutation.sh # stop each group after 900 s (default: none);
#                                                # the score then covers the mutants checked
#
# Reports go to bench/mutation/<group>.txt (the full mutmut results, one line per mutant).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${MLEM_PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV="${MLEM_MUTATION_VENV:-$ROOT/.venv-mutation}"
CHILDREN="${MUTATION_CHILDREN:-2}"
BUDGET="${MUTATION_BUDGET:-0}"  # seconds per group, 0 = until every mutant is checked
OUT="$ROOT/bench/mutation"

if [ ! -x "$VENV/bin/mutmut" ]; then
    echo "mutation: making $VENV (locked dependencies + mutmut) ..." >&2
    "$PY" -m uv venv -q --python "$PY" "$VENV"
    "$PY" -m uv export --project "$ROOT" --frozen --all-extras --no-hashes --no-emit-project \
        -q > "$VENV/requirements.txt"
    "$PY" -m uv pip install -q --python "$VENV/bin/python" -r "$VENV/requirements.txt" \
        "mutmut==3.8.1"
fi

# group -> "modules to mutate|tests that exercise them|extra pytest arguments" (tests without
# Docker: the deploy group is covered by the doubles' in-process tests; the lifecycle tests
# that start model servers take a minute each and sit out, as do the Docker-backed ones).
# mutmut runs pytest twice in one process; s3fs caches its filesystem (and moto's first URL)
# across runs, so the S3-on-moto tests sit out, and so does the test that imports mlem_lib from
# another directory (the scratch copy is not installed). Extra arguments are separated by ';'.
declare -A MUTATION_GROUPS=(
    [storage]="mlem_lib/storage.py mlem_lib/objects.py|tests/test_storage.py tests/test_objects.py|-k;not s3 and not moto and not where_module_is_missing"
    [codecs]="mlem_lib/serve/codecs.py|tests/test_serve_app.py"
    [deploy]="mlem_lib/deploy/state.py mlem_lib/deploy/wait.py mlem_lib/deploy/aws.py mlem_lib/deploy/heroku_api.py mlem_lib/deploy/declaration.py|tests/test_deploy_state.py tests/test_deploy_declaration.py tests/test_deploy_heroku_api.py tests/test_heroku_platform.py tests/test_sagemaker_lifecycle.py|-k;throttling or not_retried or network or not lifecycle"
    [registry]="mlem_lib/registry/paths.py mlem_lib/registry/tags.py mlem_lib/registry/stages.py mlem_lib/registry/listing.py|tests/test_registry.py tests/test_commands_registry.py"
)
selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=(storage codecs deploy registry)
mkdir -p "$OUT"

for group in "${selected[@]}"; do
    spec="${MUTATION_GROUPS[$group]:?unknown group $group (storage codecs deploy registry)}"
    IFS='|' read -r modules tests extra <<< "$spec"
    work="$(mktemp -d "${TMPDIR:-/tmp}/mlem-mutation-$group.XXXXXX")"
    git -C "$ROOT" archive HEAD | tar -x -C "$work"
    {
        echo "[mutmut]"
        echo "source_paths=mlem_lib"
        printf 'also_copy=\n    deployments\n'  # the shipped declarations some tests read
        echo "only_mutate="
        for m in $modules; do echo "    $m"; done
        echo "pytest_add_cli_args="
        printf '    %s\n' -p no:cacheprovider -x
        if [ -n "$extra" ]; then
            IFS=';' read -ra words <<< "$extra"
            printf '    %s\n' "${words[@]}"
        fi
        echo "pytest_add_cli_args_test_selection="
        for t in $tests; do echo "    $t"; done
    } > "$work/setup.cfg"
    echo "mutation: $group: mutating $modules (tests: $tests) in $work" >&2
    start=$(date +%s)
    (cd "$work" && PYTHONDONTWRITEBYTECODE=1 timeout --signal=INT --kill-after=60 "$BUDGET" \
        "$VENV/bin/mutmut" run --max-children "$CHILDREN" > "$work/run.log" 2>&1) || echo "mutation: $group: mutmut exited $? (see $OUT/$group.log)" >&2
    tr '\r' '\n' < "$work/run.log" | grep -v "^[^a-zA-Z]*Generating mutants$" | tail -200 \
        > "$OUT/$group.log" || true
    (cd "$work" && "$VENV/bin/mutmut" results --all true) > "$OUT/$group.txt" 2>/dev/null || true
    echo "mutation: $group took $(( $(date +%s) - start ))s" >&2
    "$VENV/bin/python" - "$OUT/$group.txt" <<'EOF'
import collections, sys
counts = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    name, _, status = line.strip().rpartition(": ")
    if not name:
        continue
    module = name.split(".x_")[0].split(".xǁ")[0]
    counts[module][status] += 1
print(f"{'module':40} {'killed':>7} {'survived':>9} {'other':>6} {'score':>6}")
for module, c in sorted(counts.items()):
    killed, survived = c["killed"] + c["caught by type check"], c["survived"]
    other = sum(c.values()) - killed - survived
    scored = killed + survived
    score = f"{100 * killed / scored:.0f}%" if scored else "-"
    print(f"{module:40} {killed:7} {survived:9} {other:6} {score:>6}")
EOF
    rm -rf "$work"
done
