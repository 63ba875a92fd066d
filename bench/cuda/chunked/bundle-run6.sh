#!/usr/bin/env bash
# The three bundles of run6.sh: the CUDA check/bench (dist/chunked-check-run6.mjs), seqc's CUDA fp32 chunked bench
# (dist/chunked-f32-run6.mjs) and the WGSL chunked bench (dist/bench-chunked-run6.js); Node, koffi and webgpu come
# from .device/.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=dist/chunked-check-run6.mjs --log-level=warning
npx esbuild bench/cuda/chunked/f32.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=dist/chunked-f32-run6.mjs --log-level=warning
npx esbuild bench/webgpu/chunked.ts --bundle --platform=node --format=esm --external:webgpu --external:prettier \
  --external:ts-morph --outfile=dist/bench-chunked-run6.js --log-level=warning
du -sh dist/chunked-plans-run6 dist/chunked-f32-plans-run6 dist/chunked-check-run6.mjs dist/chunked-f32-run6.mjs dist/bench-chunked-run6.js
