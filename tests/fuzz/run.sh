#!/usr/bin/env bash
# Fuzz the server against the official OpenAPI specs with schemathesis (tests/fuzz/README.md).
#
#   tests/fuzz/run.sh [extra schemathesis run options, e.g. --include-operation-id createFile]
#
# Installs the pinned schemathesis into tests/fuzz/.venv, builds the binaries, starts the
# Chat Completions stand-in and the server (local store in a temporary directory, API key
# sk-fuzz) on free loopback ports, writes the spec copies with the documented exceptions
# (overlay.py), runs every phase (examples, coverage, fuzzing, stateful) with every check on
# all 44 Assistants operations, then on the 14 Responses and Conversations operations the
# server has (not `POST /responses/compact`), stops everything, and exits non-zero when
# either run failed. The JUnit reports (junit.xml, junit-responses.xml), the server's log and
# the failures that hooks.py dropped as known false positives (filtered.txt, for review) go
# to tests/fuzz/out/. Extra options go to both runs (pick one with FUZZ_SUITES).
#
# Environment:
#   FUZZ_SPEC          the Assistants spec (default: tests/spec/openai-assistants-openapi.yaml,
#                      the official spec kept in the repository so that a clone alone runs
#                      the suite)
#   FUZZ_RESPONSES_SPEC  the Responses and Conversations spec (default:
#                      tests/spec/openai-responses-openapi.yaml, kept the same way)
#   FUZZ_SUITES        which runs, in order (default "assistants responses")
#   FUZZ_MAX_EXAMPLES  test cases per operation and phase (default 25)
#   FUZZ_SEED          hypothesis seed (default 1, so runs are repeatable; "random" for a new one)
#   FUZZ_SKIP_BUILD=1  use target/debug as it is
#   FUZZ_OUT           where reports go (default tests/fuzz/out)
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$FUZZ_DIR/../.." && pwd)"
cd "$ROOT"

SPEC="${FUZZ_SPEC:-$ROOT/tests/spec/openai-assistants-openapi.yaml}"
RESPONSES_SPEC="${FUZZ_RESPONSES_SPEC:-$ROOT/tests/spec/openai-responses-openapi.yaml}"
SUITES="${FUZZ_SUITES:-assistants responses}"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-25}"
SEED="${FUZZ_SEED:-1}"
OUT="${FUZZ_OUT:-$FUZZ_DIR/out}"
VENV="$FUZZ_DIR/.venv"
API_KEY="sk-fuzz"

step() { printf '\n==> %s\n' "$*"; }
die() { echo "tests/fuzz/run.sh: $*" >&2; exit 2; }

[[ -f "$SPEC" ]] || die "spec not found: $SPEC (set FUZZ_SPEC)"
[[ -f "$RESPONSES_SPEC" ]] || die "spec not found: $RESPONSES_SPEC (set FUZZ_RESPONSES_SPEC)"
# The team's copies beside the repository, where there are, are the reference: the
# repository's must not drift from them.
for pair in "FUZZ_SPEC:$SPEC:openai-assistants-openapi.yaml" \
    "FUZZ_RESPONSES_SPEC:$RESPONSES_SPEC:openai-responses-openapi.yaml"; do
    IFS=: read -r var ours name <<<"$pair"
    shared="$ROOT/../shared/$name"
    if [[ -z "${!var:-}" && -f "$shared" ]] && ! cmp -s "$ours" "$shared"; then
        die "$ours differs from $shared: copy the shared one into the repository"
    fi
done
for suite in $SUITES; do
    [[ "$suite" == assistants || "$suite" == responses ]] || die "unknown suite in FUZZ_SUITES: $suite"
done

# 1. schemathesis, pinned, in a venv of its own (reinstalled when requirements.txt changes).
step "python venv (tests/fuzz/.venv)"
REQS="$FUZZ_DIR/requirements.txt"
STAMP="$VENV/.requirements.sha256"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
want="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
    echo "$want" >"$STAMP"
else
    echo "requirements are up to date"
fi
"$VENV/bin/schemathesis" --version

# 2. the binaries.
if [[ "${FUZZ_SKIP_BUILD:-}" != 1 ]]; then
    step "cargo build --workspace --bins"
    cargo build --workspace --bins
fi
SERVER_BIN="$ROOT/target/debug/assistants-service"
STANDIN_BIN="$ROOT/target/debug/llm-standin"
[[ -x "$SERVER_BIN" && -x "$STANDIN_BIN" ]] || die "missing $SERVER_BIN or $STANDIN_BIN"

# 3. stand-in and server; both stopped (by their own pids) whenever this script exits.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/assistants-fuzz.XXXXXX")"
mkdir -p "$OUT"
STANDIN_PID=""
SERVER_PID=""
stop() {
    local pid
    for pid in "$SERVER_PID" "$STANDIN_PID"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    [[ -f "$WORK/server.log" ]] && cp "$WORK/server.log" "$OUT/server.log"
    rm -rf "$WORK"
}
trap stop EXIT
trap 'exit 130' INT TERM

step "start the Chat Completions stand-in and the server"
"$STANDIN_BIN" 0 >"$WORK/standin.out" 2>"$WORK/standin.log" </dev/null &
STANDIN_PID=$!
STANDIN_URL=""
for _ in $(seq 100); do
    STANDIN_URL="$(sed -n 's/^listening on //p' "$WORK/standin.out")"
    [[ -n "$STANDIN_URL" ]] && break
    kill -0 "$STANDIN_PID" 2>/dev/null || die "llm-standin exited: $(cat "$WORK/standin.log")"
    sleep 0.1
done
[[ -n "$STANDIN_URL" ]] || die "llm-standin did not announce its address"

free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT="$(free_port)"
mkdir -p "$WORK/data"
env PORT="$PORT" BIND=127.0.0.1 DATA_DIR="$WORK/data" STORAGE=local \
    ASSISTANTS_API_KEYS="$API_KEY" OPENAI_BASE_URL="$STANDIN_URL" OPENAI_API_KEY=sk-standin \
    RUST_LOG="${RUST_LOG:-info}" \
    "$SERVER_BIN" >"$WORK/server.log" 2>&1 </dev/null &
SERVER_PID=$!
BASE_URL="http://127.0.0.1:$PORT/v1"
for _ in $(seq 300); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/assistants" || true)"
    [[ "$code" != 000 ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server exited during start-up"; }
    sleep 0.1
done
[[ "$code" != 000 ]] || die "the server did not answer on $BASE_URL"
echo "stand-in $STANDIN_URL, server $BASE_URL"

# One assistant for the generated runs to use (hooks.py, D1).
assistant="$(curl -sf "$BASE_URL/assistants" -H "Authorization: Bearer $API_KEY" \
    -H 'OpenAI-Beta: assistants=v2' -H 'Content-Type: application/json' \
    -d '{"model": "gpt-4o-mini", "name": "fuzz"}')" || die "could not create the test assistant"
FUZZ_ASSISTANT_ID="$("$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["id"])' <<<"$assistant")"
echo "test assistant $FUZZ_ASSISTANT_ID"

# 4. the server's request-shape table is the specs' (src/api/shapes.rs), the spec copies with
#    the documented exceptions, then schemathesis: the Assistants spec, then the Responses one.
step "request-shape table (src/api/shapes.rs) matches the specs"
"$VENV/bin/python" "$FUZZ_DIR/shapes.py" "$SPEC" "$RESPONSES_SPEC" --check "$ROOT/src/api/shapes.rs"

step "spec overlays"
"$VENV/bin/python" "$FUZZ_DIR/overlay.py" "$SPEC" "$WORK/spec.json"
"$VENV/bin/python" "$FUZZ_DIR/overlay.py" --responses "$RESPONSES_SPEC" "$WORK/spec-responses.json"

seed_args=()
[[ "$SEED" != random ]] && seed_args=(--seed "$SEED")
rm -f "$OUT/filtered.txt"
rc=0
# fuzz NAME CONFIG SPEC JUNIT [options]: one schemathesis run; its status is added to rc.
fuzz() {
    local name="$1" config="$2" spec="$3" junit="$4" started=$SECONDS status=0
    shift 4
    step "schemathesis: $name (max examples $MAX_EXAMPLES, seed $SEED)"
    (
        cd "$WORK"  # anything schemathesis writes by itself stays out of the repository
        FUZZ_API_KEY="$API_KEY" FUZZ_ASSISTANT_ID="$FUZZ_ASSISTANT_ID" FUZZ_BASE_URL="$BASE_URL" \
            FUZZ_FILTER_LOG="$OUT/filtered.txt" SCHEMATHESIS_HOOKS="$FUZZ_DIR/hooks.py" \
            FUZZ_SPEC_COPY="$spec" \
            "$VENV/bin/schemathesis" --config-file "$config" run "$spec" \
            --url "$BASE_URL" \
            --max-examples "$MAX_EXAMPLES" "${seed_args[@]}" \
            --report junit --report-junit-path "$OUT/$junit" \
            "$@"
    ) || status=$?
    echo "schemathesis ($name) finished in $((SECONDS - started)) s with exit code $status (reports in ${OUT#"$ROOT"/})"
    if ((status != 0)); then rc=1; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "the server is no longer running; see ${OUT#"$ROOT"/}/server.log" >&2
        rc=1
    fi
}
for suite in $SUITES; do
    case "$suite" in
    assistants)
        fuzz "Assistants (44 operations)" "$FUZZ_DIR/schemathesis.toml" "$WORK/spec.json" junit.xml "$@"
        ;;
    responses)
        # POST /responses/compact is in the spec, not in the server (README: R0).
        fuzz "Responses and Conversations (14 operations)" "$FUZZ_DIR/schemathesis-responses.toml" \
            "$WORK/spec-responses.json" junit-responses.xml \
            --exclude-operation-id Compactconversation "$@"
        ;;
    esac
done
exit "$rc"
