#!/usr/bin/env bash
# One device call (~1.5 min): phase A without low rank (chunked-phase-a-nolr.ts) against the core's phase A it replaced,
# on Simple GLA, GLA and Mamba-2 at the benchmark shapes: the variant `auto` picks, compiled at the old commit
# (dist/wgsl-old-plans-pa) and in this tree, alternating forward by forward, plus phase A alone (10 launches a forward);
# the new ones checked against float64; then seqc's CUDA chunked fp32 split3 variants at the same shapes.
#   here:   at the old commit (an exported tree, node_modules linked):
#             npx tsx bench/webgpu/dump-plans.ts dist/wgsl-old-plans-pa simple_gla gla mamba2
#           npx esbuild bench/webgpu/chunked-tiled.ts --bundle --platform=node --format=esm --external:webgpu \
#             --external:prettier --external:ts-morph --outfile=dist/bench-phase-a.js
#           (dist/chunked-f32-t5.mjs and dist/chunked-f32-plans-t5 as in run-tiled.sh)
#   device: run command="bash bench/webgpu/run-phase-a.sh"  carry=[".device", "dist/bench-phase-a.js",
#             "dist/chunked-f32-t5.mjs", "dist/chunked-f32-plans-t5", "dist/wgsl-old-plans-pa"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
M=simple_gla,gla,mamba2
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee "$OUT/run.log"
timeout 95 node dist/bench-phase-a.js --out "$OUT" --budget 85 --only $M --old-plans dist/wgsl-old-plans-pa 2>&1 | grep -v "artificially reduced" | tee -a "$OUT/run.log" || echo "wgsl exited with $?"
SEQC_PLANS=dist/chunked-f32-plans-t5 timeout 25 node dist/chunked-f32-t5.mjs --out "$OUT" --pool --only $M >> "$OUT/run.log" 2>&1 || echo "cuda f32 exited with $?"
tail -3 "$OUT/run.log"
python3 bench/webgpu/tiled-ratio.py
