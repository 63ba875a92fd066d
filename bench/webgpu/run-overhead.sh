#!/usr/bin/env bash
# One device call (~1.5 min): WGSL chunked forwards one at a time (awaited) vs back to back, with phase A / walk /
# readout from back-to-back prefixes of the plan, at the benchmark shapes of six models (the committed kernels, the
# split3 variant auto picks); then seqc's CUDA chunked fp32 split3 variants at the same shapes; overhead-ratio.py joins.
#   here:   npx esbuild bench/webgpu/forward-overhead.ts --bundle --platform=node --format=esm --external:webgpu \
#             --external:prettier --external:ts-morph --outfile=dist/bench-forward-overhead.js
#           (dist/chunked-f32-t5.mjs and dist/chunked-f32-plans-t5 as in run-tiled.sh)
#   device: run command="bash bench/webgpu/run-overhead.sh"  carry=[".device", "dist/bench-forward-overhead.js",
#             "dist/chunked-f32-t5.mjs", "dist/chunked-f32-plans-t5"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee "$OUT/run.log"
timeout 62 node dist/bench-forward-overhead.js --out "$OUT" --budget 55 2>&1 | grep -v "artificially reduced" | tee -a "$OUT/run.log" || echo "wgsl exited with $?"
SEQC_PLANS=dist/chunked-f32-plans-t5 timeout 28 node dist/chunked-f32-t5.mjs --out "$OUT" --pool >> "$OUT/run.log" 2>&1 || echo "cuda f32 exited with $?"
tail -3 "$OUT/run.log"
python3 bench/webgpu/overhead-ratio.py
