#!/usr/bin/env bash
# Installs the browser the playground tests drive (tests/playground/): Debian's `chromium`
# (/usr/bin/chromium), which playwright-core launches by path; no browser is downloaded by a
# test tool. Idempotent and quiet: installs only when missing. Needs root (or sudo) on Debian
# or Ubuntu. Used by scripts/test.sh.
set -euo pipefail

PACKAGES=(chromium fonts-dejavu-core)
missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]} == 0)) && [[ -x /usr/bin/chromium ]]; then
    echo "chromium is installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "chromium-deps.sh: not a Debian system; install ${missing[*]} yourself" >&2
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
/usr/bin/chromium --version
