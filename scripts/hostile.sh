#!/usr/bin/env bash
# The hostile-input attacks at the scale they were reported at, on the release build: too
# slow for CI's debug build, which runs the same tests at a smaller scale. Prints each
# attack's figures (time to settle, the server's peak memory, the other tenant's slowest
# answer); RELIABILITY.md ("Hostile input at full scale: documents and work") records them.
#   scripts/hostile.sh            # every test of tests/hostile_work.rs
#   scripts/hostile.sh bombs      # those whose name contains "bombs"
# Needs what scripts/test.sh installs (node_modules for Azurite).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x node_modules/.bin/azurite ]] || npm ci --no-audit --no-fund --loglevel=error
# shellcheck source=scripts/azurite.sh
. scripts/azurite.sh
trap azurite_stop EXIT
trap 'exit 130' INT TERM
azurite_start
export AZURITE_CONNECTION_STRING
out="$(mktemp)"
rc=0
HOSTILE_FULL=1 cargo test --release --test hostile_work -- --nocapture --test-threads=1 "$@" \
    >"$out" 2>&1 || rc=$?
grep -E "^test |hostile figure|test result" "$out" || true
if ((rc != 0)); then
    echo "hostile.sh: tests failed; the whole output is in $out" >&2
    exit "$rc"
fi
rm -f "$out"
