#!/usr/bin/env bash
# Run the whole test suite on a fresh machine:
#   npm deps (Azurite, openai SDK, playwright-core) -> Python venv (openai SDK, pytest) -> the
#   code interpreter's sandbox (bubblewrap, Debian's numpy/pandas/matplotlib) -> Debian's
#   chromium -> cargo build -> Azurite -> cargo test -> Python SDK conformance tests -> Node
#   SDK conformance tests -> playground browser tests -> spec fuzzing (schemathesis) -> the
#   deployable package.
# Extra arguments are passed to `cargo test` (e.g. scripts/test.sh -- --nocapture).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

step() { printf '\n==> %s\n' "$*"; }

# a. Node dependencies (Azurite, and the Node SDK for later tests).
step "npm dependencies"
if [[ ! -x node_modules/.bin/azurite || ! -e node_modules/.package-lock.json \
      || package-lock.json -nt node_modules/.package-lock.json ]]; then
    if [[ -f package-lock.json ]]; then
        npm ci --no-audit --no-fund --loglevel=error
    else
        npm install --no-audit --no-fund --loglevel=error
    fi
else
    echo "node_modules is up to date"
fi

# b. Python venv for the SDK conformance tests.
step "python venv (.venv-test)"
VENV="$ROOT/.venv-test"
REQS="tests/sdk/requirements.txt"
STAMP="$VENV/.requirements.sha256"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
want="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
    echo "$want" >"$STAMP"
else
    echo "requirements are up to date"
fi

# b2. The local code_interpreter sandbox: bubblewrap and Debian's Python stack (apt, only
#     what is missing).
step "code interpreter sandbox packages"
scripts/code-interpreter-deps.sh

# b3. The browser the playground tests drive (Debian's chromium; apt, only when missing).
step "chromium for the playground tests"
scripts/chromium-deps.sh

# c. Debug build of the binaries the SDK tests start as subprocesses: the server, the
#    Functions-host emulator, and the stand-in (the workspace's `standin/` crate).
step "cargo build --workspace --bins"
cargo build --workspace --bins
ASSISTANTS_BIN="$ROOT/target/debug/assistants-service"
[[ -x "$ASSISTANTS_BIN" ]] || { echo "missing $ASSISTANTS_BIN after build" >&2; exit 1; }
export ASSISTANTS_BIN
# The Chat Completions stand-in each SDK test server talks to (OPENAI_BASE_URL).
LLM_STANDIN_BIN="$ROOT/target/debug/llm-standin"
[[ -x "$LLM_STANDIN_BIN" ]] || { echo "missing $LLM_STANDIN_BIN after build" >&2; exit 1; }
export LLM_STANDIN_BIN
# The Functions-host stand-in that runs the server as a custom handler ("functions" backend
# of the Python run and streaming tests).
FUNCTIONS_EMULATOR_BIN="$ROOT/target/debug/functions-host-emulator"
[[ -x "$FUNCTIONS_EMULATOR_BIN" ]] || { echo "missing $FUNCTIONS_EMULATOR_BIN after build" >&2; exit 1; }
export FUNCTIONS_EMULATOR_BIN

# d. Azurite on free ports, stopped whenever this script exits. On disk, not in memory: in
#    memory every write is an extent of its own and Azurite's sweeps (the queue's every
#    60 s, the blob one 10 minutes after start) scan them on Node's event loop, stalling
#    every request for seconds to tens of seconds once the suite has written enough
#    (RELIABILITY.md); the SDK tests, 10 minutes in, failed with 503s from such stalls.
step "start Azurite"
# shellcheck source=scripts/azurite.sh
. scripts/azurite.sh
trap azurite_stop EXIT
trap 'exit 130' INT TERM
export AZURITE_PERSISTENCE="${AZURITE_PERSISTENCE:-disk}"
azurite_start
export AZURITE_CONNECTION_STRING

# e. Rust unit + integration tests, of the service and of the stand-in.
step "cargo test --workspace"
cargo test --workspace "$@"

# f. Python SDK conformance tests: local and azure storage, and through a BACKEND=proxy server
#    in front of a stored one (local store); runs and streaming also under the Functions host
#    emulator.
# g. Node SDK streaming conformance tests (local store, directly and through a proxy server;
#    they start their own servers).
# Both always run; the script fails if either does.
step "python SDK conformance tests"
# A fresh Azurite for the SDK tests: none of the Rust tests' objects, and its own clock for
# the sweeps.
azurite_stop
azurite_start
export AZURITE_CONNECTION_STRING
py_rc=0
"$VENV/bin/python" -m pytest tests/sdk/python -q || py_rc=$?

step "node SDK conformance tests"
node_rc=0
node --test tests/sdk/node/ || node_rc=$?

# g2. The playground (/playground/) in headless Chromium with playwright-core, against the
#     server and the stand-in (it starts its own); screenshots go to
#     target/playground-screenshots/. Always runs; the script fails if it does.
step "playground browser tests"
playground_rc=0
node --test tests/playground/ || playground_rc=$?

# h. Spec fuzzing: schemathesis (pinned, in tests/fuzz/.venv) against the server with the
#    official specs: the 44 Assistants operations, then the 14 Responses and Conversations
#    ones; fails on any 5xx, response outside the spec, or accepted request the spec forbids
#    (tests/fuzz/README.md lists the documented exceptions). The example count keeps it to a
#    few minutes.
step "spec fuzzing (tests/fuzz/run.sh)"
fuzz_rc=0
FUZZ_SKIP_BUILD=1 FUZZ_MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-15}" tests/fuzz/run.sh || fuzz_rc=$?

# i. The deployable package (release build for glibc 2.28) and its layout tests.
step "package (scripts/package.sh) and its tests"
pkg_rc=0
{ scripts/package.sh \
    && PACKAGE_ZIP="$ROOT/dist/assistants-service.zip" "$VENV/bin/python" -m pytest tests/package -q; } \
    || pkg_rc=$?

if ((py_rc != 0 || node_rc != 0 || playground_rc != 0 || fuzz_rc != 0 || pkg_rc != 0)); then
    echo "tests failed (SDK pytest exit $py_rc, node --test exit $node_rc, playground exit $playground_rc, fuzzing exit $fuzz_rc, package exit $pkg_rc)" >&2
    exit 1
fi
