#!/usr/bin/env bash
# Sourced by the *-deps.sh scripts: `apt_install_missing NAME PACKAGE...` installs those of
# the Debian packages that are missing (quietly; with sudo when not root; updating the
# package lists once if the first try fails, as on a fresh machine) and says what it did.
# Returns 1 on a system without apt-get, naming what to install by hand.

apt_install_missing() {
    local name="$1"
    shift
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)); then
        echo "$name: packages are installed"
        return 0
    fi
    if ! command -v apt-get >/dev/null; then
        echo "$name: not a Debian system; install ${missing[*]} yourself" >&2
        return 1
    fi
    local sudo=()
    if ((EUID != 0)); then
        sudo=(sudo)
    fi
    echo "$name: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
        || { "${sudo[@]}" apt-get update -qq >/dev/null \
            && "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; }
}
