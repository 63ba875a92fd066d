#!/usr/bin/env bash
# One device call (~2 min): the WGSL chunked split3 kernels old (s3) vs new (s3t: tiled readout, padded phase A tiles)
# alternating at the 18 benchmark cases with phase A / walk / readout parts, the s3t twins
# checked against float64, then seqc's CUDA chunked fp32 split3 variants at the same shapes; tiled-ratio.py joins them.
#   here:   SEQC_PLANS=dist/chunked-f32-plans-t5 SEQC_BUILD_F32_VARIANTS='^chunked-split3-f32-k(64|128)-v(32|16)-r[12]$' \
#             npx tsx bench/cuda/chunked/build-f32.ts
#           npx esbuild bench/webgpu/chunked-tiled.ts --bundle --platform=node --format=esm --external:webgpu \
#             --external:prettier --external:ts-morph --outfile=dist/bench-chunked-tiled.js
#           npx esbuild bench/cuda/chunked/f32.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
#             --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" \
#             --outfile=dist/chunked-f32-t5.mjs
#   device: run command="bash bench/webgpu/run-tiled.sh"  carry=[".device", "dist/bench-chunked-tiled.js",
#             "dist/chunked-f32-t5.mjs", "dist/chunked-f32-plans-t5"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee "$OUT/run.log"
timeout 125 node dist/bench-chunked-tiled.js --out "$OUT" --budget 115 2>&1 | grep -v "artificially reduced" | tee -a "$OUT/run.log" || echo "wgsl exited with $?"
SEQC_PLANS=dist/chunked-f32-plans-t5 timeout 45 node dist/chunked-f32-t5.mjs --out "$OUT" --pool >> "$OUT/run.log" 2>&1 || echo "cuda f32 exited with $?"
tail -3 "$OUT/run.log"
python3 bench/webgpu/tiled-ratio.py
