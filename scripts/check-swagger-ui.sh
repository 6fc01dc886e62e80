#!/usr/bin/env bash
# Renders the service's Swagger UI page (/docs/) in headless Chromium (Debian's `chromium`,
# installed with apt-get if missing) and checks that it shows every operation of the served
# OpenAPI document (its operationId and path) and the bearer-auth "Authorize" button. Not part
# of CI (it installs a browser); run it by hand after changing the document or the page:
#   scripts/check-swagger-ui.sh            # builds the debug binary first
#   SKIP_BUILD=1 scripts/check-swagger-ui.sh
# Leaves the rendered DOM and a screenshot in target/swagger-ui-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
OUT="$ROOT/target/swagger-ui-check"
mkdir -p "$OUT"

if ! command -v chromium >/dev/null; then
    echo "==> apt-get install chromium"
    apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi
chromium --version

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --bin assistants-service
fi
BIN="$ROOT/target/debug/assistants-service"

WORK="$(mktemp -d)"
PROFILE="$WORK/profile"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# Open mode (no keys) on loopback: the page needs no key anyway.
env -u ASSISTANTS_API_KEYS PORT="$PORT" BIND=127.0.0.1 DATA_DIR="$WORK/data" STORAGE=local \
    "$BIN" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 100); do
    curl -sf "$BASE/openapi.json" -o "$OUT/openapi.json" && break
    sleep 0.1
done
[[ -s "$OUT/openapi.json" ]] || { echo "the server did not serve /openapi.json" >&2; cat "$OUT/server.log" >&2; exit 1; }

FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --user-data-dir="$PROFILE" --virtual-time-budget=20000 --window-size=1280,4000)
echo "==> chromium --dump-dom $BASE/docs/"
chromium "${FLAGS[@]}" --dump-dom "$BASE/docs/" >"$OUT/dom.html" 2>"$OUT/chromium.log"
chromium "${FLAGS[@]}" --screenshot="$OUT/page.png" "$BASE/docs/" >/dev/null 2>>"$OUT/chromium.log" || true

python3 - "$OUT/openapi.json" "$OUT/dom.html" <<'PY'
import html, json, re, sys
doc = json.load(open(sys.argv[1]))
dom = html.unescape(open(sys.argv[2], encoding="utf-8").read())
missing = []
count = 0
for path, item in doc["paths"].items():
    for method, op in item.items():
        count += 1
        # Each operation's block: its method, path and operationId (displayOperationId).
        if op["operationId"] not in dom or f'data-path="{path}"' not in dom:
            missing.append(f"{method.upper()} {path} ({op['operationId']})")
blocks = len(re.findall(r'class="opblock opblock-(?:get|post|delete)', dom))
print(f"operations in the document: {count}; operation blocks rendered: {blocks}")
ok = True
if missing:
    print("not rendered:", *missing, sep="\n  ")
    ok = False
if blocks != count:
    print(f"expected {count} operation blocks, found {blocks}")
    ok = False
if "authorize" not in dom.lower():
    print("no Authorize button (bearer auth) on the page")
    ok = False
title = doc["info"]["title"]
if title not in dom:
    print(f"the title {title!r} is not shown")
    ok = False
print("OK: the page renders every operation" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
echo "DOM and screenshot in $OUT"
