#!/usr/bin/env bash
# Installs what the local code_interpreter sandbox needs on Debian or Ubuntu: bubblewrap and
# Debian's Python 3 with numpy, pandas and matplotlib (the sandbox binds /usr read-only and
# runs /usr/bin/python3). Idempotent and quiet: installs only what is missing. Needs root
# (or sudo). Used by scripts/test.sh; run it once before `cargo run` to get the local
# executor (without it the server starts with code_interpreter off and says why).
set -euo pipefail

# shellcheck source=scripts/apt-packages.sh
. "$(dirname "$0")/apt-packages.sh"
apt_install_missing "code interpreter" \
    bubblewrap python3 python3-numpy python3-pandas python3-matplotlib
