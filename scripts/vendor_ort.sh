#!/bin/sh
# Copy the onnxruntime-web files the browser needs from node_modules into static/,
# so the page serves them itself (no CDN). See ../shared/ONNX-IN-THE-BROWSER.md.
set -eu
src=node_modules/onnxruntime-web/dist
dst=static/vendor/ort
mkdir -p "$dst"
# The .map files too: the manifest storage follows sourceMappingURL comments.
for f in ort.wasm.min.js ort.wasm.min.js.map ort.min.js.map \
         ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm \
         ort.min.js ort-wasm-simd-threaded.jsep.mjs ort-wasm-simd-threaded.jsep.wasm; do
  cp "$src/$f" "$dst/$f"
done
cp node_modules/onnxruntime-web/LICENSE "$dst/LICENSE" 2>/dev/null || true
