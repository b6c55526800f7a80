#!/usr/bin/env bash
# Vendor onnxruntime-web (the in-browser runtime of the "stylize in your browser" page) from the npm
# registry at build time: `npm pack` (which checks the tarball against the registry's integrity hash),
# then copy the few files the page loads into huafeng/service/static/vendor/ (gitignored, never
# committed). No CDN is used at run time. Usage: tools/vendor_ort_web.sh [VERSION]
set -euo pipefail
VERSION="${1:-1.30.0}"
cd "$(dirname "$0")/.."
DEST=huafeng/service/static/vendor
FILES=(ort.wasm.min.js ort-wasm-simd-threaded.wasm ort-wasm-simd-threaded.mjs)
if [ -f "$DEST/VERSION" ] && [ "$(cat "$DEST/VERSION")" = "$VERSION" ] \
   && all_there=$(for f in "${FILES[@]}"; do [ -s "$DEST/$f" ] || echo missing; done) && [ -z "$all_there" ]; then
  echo "onnxruntime-web $VERSION already vendored in $DEST"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "npm is needed to vendor onnxruntime-web (apt-get install npm)" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "onnxruntime-web@$VERSION" >/dev/null && tar xzf onnxruntime-web-"$VERSION".tgz)
mkdir -p "$DEST"
for f in "${FILES[@]}"; do
  cp "$TMP/package/dist/$f" "$DEST/$f.tmp" && mv "$DEST/$f.tmp" "$DEST/$f"
done
LICENSE_ID=$(node -p "require('$TMP/package/package.json').license" 2>/dev/null || echo MIT)
echo "onnxruntime-web $VERSION (npm package onnxruntime-web), (c) Microsoft Corporation, licence: $LICENSE_ID" > "$DEST/NOTICE"
echo "$VERSION" > "$DEST/VERSION"
echo "vendored onnxruntime-web $VERSION into $DEST ($(du -sh "$DEST" | cut -f1))"
