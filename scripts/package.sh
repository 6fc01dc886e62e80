#!/usr/bin/env bash
# Build the deployable Azure Functions package: dist/assistants-service.zip with
#   host.json, <function>/function.json for each folder of function-defs/, handler (mode 755)
# The handler is a release build linked against glibc <= 2.28 (cargo-zigbuild), so it runs
# on the Functions Linux images whatever their Debian release. Installs its tools into
# .venv-tools (pinned in scripts/package-requirements.txt) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
TARGET="x86_64-unknown-linux-gnu"
GLIBC="2.28"

TOOLS="$ROOT/.venv-tools"
REQS="scripts/package-requirements.txt"
STAMP="$TOOLS/.requirements.sha256"
if [[ ! -x "$TOOLS/bin/python" ]]; then
    python3 -m venv "$TOOLS"
fi
want="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
    "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
    echo "$want" >"$STAMP"
fi

echo "==> cargo zigbuild --release --target $TARGET.$GLIBC"
PATH="$TOOLS/bin:$PATH" cargo zigbuild --release --target "$TARGET.$GLIBC" --bin assistants-service
BIN="target/$TARGET/release/assistants-service"

# The newest glibc symbol version the binary needs must not exceed the target's.
highest="$(objdump -T "$BIN" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
if [[ "$(printf '%s\n%s\n' "$highest" "$GLIBC" | sort -V | tail -1)" != "$GLIBC" ]]; then
    echo "package.sh: $BIN needs GLIBC_$highest (> $GLIBC)" >&2
    exit 1
fi
echo "handler needs at most GLIBC_$highest"

STAGE="dist/app"
rm -rf "$STAGE" dist/assistants-service.zip
mkdir -p "$STAGE"
cp host.json "$STAGE/"
for f in function-defs/*/; do
    name="$(basename "$f")"
    mkdir -p "$STAGE/$name"
    cp "$f/function.json" "$STAGE/$name/"
done
install -m 755 "$BIN" "$STAGE/handler"

# Zip with Python so the executable bit is recorded however the machine's zip is built.
"$TOOLS/bin/python" - "$STAGE" dist/assistants-service.zip <<'PY'
import os, sys, zipfile
stage, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for root, _, files in os.walk(stage):
        for name in sorted(files):
            path = os.path.join(root, name)
            arcname = os.path.relpath(path, stage)
            info = zipfile.ZipInfo.from_file(path, arcname)
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                z.writestr(info, f.read())
PY
echo "==> dist/assistants-service.zip"
ls -l dist/assistants-service.zip
