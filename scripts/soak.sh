#!/usr/bin/env bash
# Soak test: a mixed workload against the server on Azurite for a while, with a report.
#
#   scripts/soak.sh [SECONDS]        default 600 (RELIABILITY.md has a recorded report)
#
# Environment: SOAK_WORKERS (default 8), SOAK_REPORT (default target/soak/report.md),
# AZURITE_BIN (another Azurite than the project's, as scripts/azurite.sh takes it).
#
# Builds the release binaries, starts a throw-away Azurite (scripts/azurite.sh), the Chat
# Completions stand-in and the server (Azure storage and the Azure queue, key sk-soak) on
# free loopback ports, runs scripts/soak.py (the official Python SDK from .venv-test:
# CRUD, queued runs, streamed runs, tool calls with submit_tool_outputs, cancels,
# file_search runs over a fresh vector store, code_interpreter runs in the local sandbox),
# then stops everything. Exits non-zero when the workload saw any error.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
SECONDS_TO_RUN="${1:-600}"
WORKERS="${SOAK_WORKERS:-8}"
REPORT="${SOAK_REPORT:-$ROOT/target/soak/report.md}"
mkdir -p "$(dirname "$REPORT")"

step() { printf '\n==> %s\n' "$*"; }

step "dependencies (node_modules, .venv-test)"
if [[ -z "${AZURITE_BIN:-}" && ! -x node_modules/.bin/azurite ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
VENV="$ROOT/.venv-test"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import openai' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
fi

step "code interpreter sandbox packages"
scripts/code-interpreter-deps.sh

step "cargo build --release --workspace --bins"
cargo build --release --workspace --bins
SERVER_BIN="$ROOT/target/release/assistants-service"
STANDIN_BIN="$ROOT/target/release/llm-standin"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/assistants-soak.XXXXXX")"
# The code interpreter's sessions live below it; run as root they run as another user, who
# must be able to pass through.
chmod 711 "$WORK"
STANDIN_PID=""
SERVER_PID=""
# shellcheck source=scripts/azurite.sh
. scripts/azurite.sh
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
    [[ -n "${AZURITE_LOG:-}" && -f "$AZURITE_LOG" ]] && cp "$AZURITE_LOG" "$(dirname "$REPORT")/azurite.log"
    azurite_stop
    [[ -f "$WORK/server.log" ]] && cp "$WORK/server.log" "$(dirname "$REPORT")/server.log"
    rm -rf "$WORK"
}
trap stop EXIT
trap 'exit 130' INT TERM

step "Azurite (on disk: see scripts/azurite.sh), stand-in, server"
AZURITE_PERSISTENCE=disk azurite_start
"$STANDIN_BIN" 0 >"$WORK/standin.out" 2>"$WORK/standin.log" </dev/null &
STANDIN_PID=$!
STANDIN_URL=""
for _ in $(seq 100); do
    STANDIN_URL="$(sed -n 's/^listening on //p' "$WORK/standin.out")"
    [[ -n "$STANDIN_URL" ]] && break
    sleep 0.1
done
[[ -n "$STANDIN_URL" ]] || { echo "llm-standin did not start" >&2; exit 2; }
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
env PORT="$PORT" BIND=127.0.0.1 STORAGE=azure \
    STORAGE_CONNECTION_STRING="$AZURITE_CONNECTION_STRING" \
    STORAGE_CONTAINER="soak$RANDOM" QUEUE_NAME="soak$RANDOM" \
    ASSISTANTS_API_KEYS=sk-soak OPENAI_BASE_URL="$STANDIN_URL" OPENAI_API_KEY=sk-standin \
    CODE_INTERPRETER=local \
    RUST_LOG="${RUST_LOG:-warn}" \
    "$SERVER_BIN" >"$WORK/server.log" 2>&1 </dev/null &
SERVER_PID=$!
BASE_URL="http://127.0.0.1:$PORT/v1"
for _ in $(seq 300); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 2; }
    sleep 0.1
done

step "workload: $SECONDS_TO_RUN s, $WORKERS workers"
rc=0
"$VENV/bin/python" scripts/soak.py --base-url "$BASE_URL" --standin-url "$STANDIN_URL" \
    --server-pid "$SERVER_PID" --azurite-pid "$AZURITE_PID" \
    --azurite-url "http://127.0.0.1:$AZURITE_BLOB_PORT/devstoreaccount1" --seconds "$SECONDS_TO_RUN" --workers "$WORKERS" \
    --report "$REPORT" || rc=$?
kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server died during the soak" >&2; rc=1; }
kill -0 "$AZURITE_PID" 2>/dev/null || { echo "Azurite died during the soak" >&2; rc=1; }
echo "report: ${REPORT#"$ROOT"/} (server and Azurite logs beside it)"
exit "$rc"
