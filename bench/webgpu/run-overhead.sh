#!/usr/bin/env bash
# One device call (~1.5 min): WGSL chunked forwards one at a time (awaited) vs back to back, with phase A / walk /
# readout from back-to-back prefixes of the plan, at the benchmark shapes of six models (the committed kernels, the
# split3 variant auto picks); then seqc's CUDA chunked fp32 split3 variants at the same shapes; overhead-ratio.py joins.
#   here:   npx esbuild bench/webgpu/forward-overhead.ts --bundle --platform=node --format=esm --external:webgpu \
#             --external:prettier --external:ts-morph --outfile=dist/bench-forward-overhead.js
#           (dist/chunked-f32-t5.mjs and dist/chunked-f32-plans-t5 as in run-tiled.sh)
#   device: run command="bash bench/webgpu/run-overhead.sh"  carry=[".device", "dist/bench-forward-overhead.js",
#             "dist/chunked-f32-t5.mjs", "dist/chunked-f32-plans-t5"]
# OLD_RUNNER=dist/runner-old.mjs (esbuild of an exported tree's runtime/index.ts, --external:webgpu): that runner and
# this one alternated sample by sample instead of the parts (forward-overhead.ts --old); overhead-old-new.py joins.
# BENCH_JS (default dist/bench-forward-overhead.js) and WGSL_BUDGET (seconds, default 55) pick the bundle and its time.
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee "$OUT/run.log"
# the clocks while the benches run (the lease variance: do slow leases run at lower clocks?)
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv -lms 500 > "$OUT/clocks.csv" 2>&1 &
SMI=$!
WGSL_BUDGET=${WGSL_BUDGET:-55}
timeout $((WGSL_BUDGET + 7)) node "${BENCH_JS:-dist/bench-forward-overhead.js}" --out "$OUT" --budget "$WGSL_BUDGET" ${OLD_RUNNER:+--old "$OLD_RUNNER"} 2>&1 | grep -v "artificially reduced" | tee -a "$OUT/run.log" || echo "wgsl exited with $?"
SEQC_PLANS=dist/chunked-f32-plans-t5 timeout 28 node dist/chunked-f32-t5.mjs --out "$OUT" --pool >> "$OUT/run.log" 2>&1 || echo "cuda f32 exited with $?"
kill "$SMI" 2>/dev/null
tail -3 "$OUT/run.log"
awk -F', ' 'NR > 1 && $2 + 0 > 0 { n++; s += $2; if ($2 + 0 < lo || lo == "") lo = $2 + 0; if ($2 + 0 > hi) hi = $2 + 0 } END { if (n) printf "SM clock while running: %d samples, min %d / mean %d / max %d MHz\n", n, lo, s / n, hi }' "$OUT/clocks.csv"
if [ -n "${OLD_RUNNER:-}" ]; then python3 bench/webgpu/overhead-old-new.py; else python3 bench/webgpu/overhead-ratio.py; fi
