#!/usr/bin/env bash
# Start/stop a throw-away Azurite (blob + queue + table) on free loopback ports.
#
# Sourced:   . scripts/azurite.sh
#            azurite_start            # exports AZURITE_CONNECTION_STRING, AZURITE_PID, ...
#            trap azurite_stop EXIT   # the caller owns the cleanup
# Run:       scripts/azurite.sh                 # start, print the exports, wait (Ctrl-C stops)
#            scripts/azurite.sh -- CMD ARGS...  # run CMD with Azurite up, stop it afterwards
#
# Azurite runs from a private temp dir and logs to $AZURITE_LOG. It keeps everything in memory
# (--inMemoryPersistence; never combined with --location), unless AZURITE_PERSISTENCE=disk:
# then data and extents go to files in the temp dir (Azurite's default mode). Long runs (the
# soak) need disk: in memory every blob or message write is an extent of its own, and the
# periodic mark-and-sweep removes each unreferenced one with a linear scan of the extent
# table, blocking Node's event loop: the queue's sweep every 60 s pauses Azurite for seconds,
# growing with the load, and the blob sweep 10 min after start for many minutes. On disk,
# writes share 64 MB extent files and the sweeps have little to do.

_AZURITE_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AZURITE_ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

# Print three distinct free TCP ports on 127.0.0.1 (all bound at once, so they differ).
_azurite_free_ports() {
    python3 - <<'PY'
import socket
socks = []
for _ in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

# True when something accepts TCP connections on 127.0.0.1:$1.
_azurite_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

azurite_start() {
    # AZURITE_BIN: another Azurite executable than the project's (npm ci installs that one).
    local bin="${AZURITE_BIN:-${_AZURITE_REPO_ROOT}/node_modules/.bin/azurite}"
    if [[ ! -x "$bin" ]]; then
        echo "azurite.sh: $bin not found; run 'npm ci' in ${_AZURITE_REPO_ROOT} first" >&2
        return 1
    fi
    local ports
    ports="$(_azurite_free_ports)" || { echo "azurite.sh: could not pick free ports" >&2; return 1; }
    read -r AZURITE_BLOB_PORT AZURITE_QUEUE_PORT AZURITE_TABLE_PORT <<<"$ports"
    AZURITE_WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/azurite.XXXXXX")"
    AZURITE_LOG="${AZURITE_WORKDIR}/azurite.log"
    local persistence=(--inMemoryPersistence)
    case "${AZURITE_PERSISTENCE:-memory}" in
        memory) ;;
        disk) persistence=(--location "$AZURITE_WORKDIR/data") ;;
        *)
            echo "azurite.sh: AZURITE_PERSISTENCE is memory or disk, not '$AZURITE_PERSISTENCE'" >&2
            return 1
            ;;
    esac

    # Run from the temp dir so nothing Azurite writes lands in the repository.
    (cd "$AZURITE_WORKDIR" && exec "$bin" --silent "${persistence[@]}" --skipApiVersionCheck \
        --disableTelemetry \
        --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 \
        --blobPort "$AZURITE_BLOB_PORT" --queuePort "$AZURITE_QUEUE_PORT" \
        --tablePort "$AZURITE_TABLE_PORT" </dev/null >"$AZURITE_LOG" 2>&1) &
    AZURITE_PID=$!

    local deadline=$((SECONDS + 30))
    until _azurite_port_open "$AZURITE_BLOB_PORT" && _azurite_port_open "$AZURITE_QUEUE_PORT"; do
        if ! kill -0 "$AZURITE_PID" 2>/dev/null; then
            echo "azurite.sh: Azurite exited during startup; log follows:" >&2
            cat "$AZURITE_LOG" >&2 || true
            AZURITE_PID=
            return 1
        fi
        if ((SECONDS >= deadline)); then
            echo "azurite.sh: Azurite did not open ports $AZURITE_BLOB_PORT/$AZURITE_QUEUE_PORT within 30 s; log follows:" >&2
            cat "$AZURITE_LOG" >&2 || true
            azurite_stop
            return 1
        fi
        sleep 0.2
    done

    AZURITE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:${AZURITE_BLOB_PORT}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:${AZURITE_QUEUE_PORT}/devstoreaccount1;"
    export AZURITE_CONNECTION_STRING AZURITE_PID AZURITE_LOG AZURITE_WORKDIR
    export AZURITE_BLOB_PORT AZURITE_QUEUE_PORT AZURITE_TABLE_PORT
    echo "azurite.sh: Azurite pid $AZURITE_PID, blob :$AZURITE_BLOB_PORT, queue :$AZURITE_QUEUE_PORT, table :$AZURITE_TABLE_PORT" >&2
}

# Stop the Azurite started by azurite_start (TERM, then KILL after 5 s). Safe to call twice.
azurite_stop() {
    local pid="${AZURITE_PID:-}"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    fi
    AZURITE_PID=
    if [[ -n "${AZURITE_WORKDIR:-}" && -d "$AZURITE_WORKDIR" ]]; then
        rm -rf "$AZURITE_WORKDIR"
    fi
    AZURITE_WORKDIR=
    return 0
}

# Executed rather than sourced.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    trap azurite_stop EXIT
    trap 'exit 130' INT TERM
    azurite_start
    if [[ "${1:-}" == "--" ]]; then
        shift
        [[ $# -gt 0 ]] || { echo "usage: $0 [-- CMD ARGS...]" >&2; exit 2; }
        set +e
        "$@"
        rc=$?
        set -e
        exit "$rc"
    fi
    echo "export AZURITE_CONNECTION_STRING='$AZURITE_CONNECTION_STRING'"
    echo "export AZURITE_PID=$AZURITE_PID"
    echo "azurite.sh: running; press Ctrl-C to stop" >&2
    wait "$AZURITE_PID"
fi
