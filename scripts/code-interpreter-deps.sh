#!/usr/bin/env bash
# Installs what the local code_interpreter sandbox needs on Debian or Ubuntu: bubblewrap and
# Debian's Python 3 with numpy, pandas and matplotlib (the sandbox binds /usr read-only and
# runs /usr/bin/python3). Idempotent and quiet: installs only what is missing. Needs root
# (or sudo). Used by scripts/test.sh; run it once before `cargo run` to get the local
# executor (without it the server starts with code_interpreter off and says why).
set -euo pipefail

PACKAGES=(bubblewrap python3 python3-numpy python3-pandas python3-matplotlib)
missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]} == 0)); then
    echo "code interpreter packages are installed"
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "code-interpreter-deps.sh: not a Debian system; install ${missing[*]} yourself" >&2
    exit 1
fi
SUDO=()
if ((EUID != 0)); then
    SUDO=(sudo)
fi
echo "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
install() { "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; }
# A fresh machine may have no package lists yet: update once and try again.
install 2>/dev/null || { "${SUDO[@]}" apt-get update -qq >/dev/null && install; }
