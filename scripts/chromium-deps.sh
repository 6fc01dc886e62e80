#!/usr/bin/env bash
# Installs the browser the playground tests drive (tests/playground/): Debian's `chromium`
# (/usr/bin/chromium), which playwright-core launches by path; no browser is downloaded by a
# test tool. Idempotent and quiet: installs only when missing. Needs root (or sudo) on Debian
# or Ubuntu. Used by scripts/test.sh.
set -euo pipefail

# shellcheck source=scripts/apt-packages.sh
. "$(dirname "$0")/apt-packages.sh"
apt_install_missing chromium chromium fonts-dejavu-core
/usr/bin/chromium --version 2>/dev/null || true
