#!/usr/bin/env bash
# The HTTP hostile-input attacks of issue 17 at full scale, against a release build: a 600 MB
# multipart field, four parallel downloads of a 500 MB file, 40 streams nobody reads and
# 20,000 slowloris connections (the CI-sized versions are tests/hostile_http.rs).
#
#   scripts/hostile-http.sh [ATTACK...]      multipart downloads streams slowloris (default: all)
#
# Environment: HOSTILE_REPORT (default target/hostile-http/report.json), SERVER_BIN (another
# server binary to attack, e.g. an older build, instead of this tree's release build).
#
# Builds the release binaries, starts the Chat Completions stand-in, and runs
# scripts/hostile_http.py, which starts a server of its own for each attack (local store in
# a temporary directory) and prints the figures: the server's peak and final memory, the
# other tenant's probe latency and failures, log growth, open descriptors, and what became
# of the attacked object. Needs about 2 GB of free disk for the downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
REPORT="${HOSTILE_REPORT:-$ROOT/target/hostile-http/report.json}"
mkdir -p "$(dirname "$REPORT")"

cargo build --release --workspace --bins
SERVER_BIN="${SERVER_BIN:-$ROOT/target/release/assistants-service}"
STANDIN_BIN="$ROOT/target/release/llm-standin"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hostile-http.XXXXXX")"
STANDIN_PID=""
stop() {
    if [[ -n "$STANDIN_PID" ]] && kill -0 "$STANDIN_PID" 2>/dev/null; then
        kill "$STANDIN_PID" 2>/dev/null || true
        wait "$STANDIN_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap stop EXIT
trap 'exit 130' INT TERM

"$STANDIN_BIN" 0 >"$WORK/standin.out" 2>"$WORK/standin.log" </dev/null &
STANDIN_PID=$!
STANDIN_URL=""
for _ in $(seq 100); do
    STANDIN_URL="$(sed -n 's/^listening on //p' "$WORK/standin.out" 2>/dev/null || true)"
    [[ -n "$STANDIN_URL" ]] && break
    sleep 0.1
done
[[ -n "$STANDIN_URL" ]] || { echo "llm-standin did not start" >&2; exit 2; }

ONLY=()
[[ $# -gt 0 ]] && ONLY=(--only "$@")
python3 scripts/hostile_http.py --server-bin "$SERVER_BIN" --standin-url "$STANDIN_URL" \
    --report "$REPORT" "${ONLY[@]}"
echo "report: ${REPORT#"$ROOT"/}"
