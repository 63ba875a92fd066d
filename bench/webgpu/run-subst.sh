#!/usr/bin/env bash
# One device call (~2 min): phase A's triangular solve, old (left-looking, two barriers a row) vs new (right-looking,
# rows in registers, one barrier a row), on the low-rank models at the benchmark shapes: the variant `auto` picks,
# compiled at the old commit (dist/wgsl-old-plans) and in this tree, alternating; the new ones checked against
# float64; then seqc's CUDA chunked fp32 split3 variants at the same shapes; tiled-ratio.py joins them.
#   here:   at the old commit (a separate worktree), npx tsx bench/webgpu/dump-plans.ts dist/wgsl-old-plans deltanet gated_deltanet mamba2 simple_gla gla rwkv7
#           npx esbuild bench/webgpu/chunked-tiled.ts --bundle --platform=node --format=esm --external:webgpu \
#             --external:prettier --external:ts-morph --outfile=dist/bench-chunked-tiled.js
#           (dist/chunked-f32-t5.mjs and dist/chunked-f32-plans-t5 as in run-tiled.sh)
#   device: run command="bash bench/webgpu/run-subst.sh"  carry=[".device", "dist/bench-chunked-tiled.js",
#             "dist/chunked-f32-t5.mjs", "dist/chunked-f32-plans-t5", "dist/wgsl-old-plans"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
M=deltanet,gated_deltanet,mamba2,simple_gla,gla,rwkv7
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee "$OUT/run.log"
timeout 112 node dist/bench-chunked-tiled.js --out "$OUT" --budget 102 --only $M --old-plans dist/wgsl-old-plans 2>&1 | grep -v "artificially reduced" | tee -a "$OUT/run.log" || echo "wgsl exited with $?"
SEQC_PLANS=dist/chunked-f32-plans-t5 timeout 30 node dist/chunked-f32-t5.mjs --out "$OUT" --pool --only $M >> "$OUT/run.log" 2>&1 || echo "cuda f32 exited with $?"
tail -3 "$OUT/run.log"
python3 bench/webgpu/tiled-ratio.py
