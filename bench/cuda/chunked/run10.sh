#!/usr/bin/env bash
# Run 10 (one call): the walks' L2 prefetch (SEQC_WALK_PF chunks beyond the cp.async stages, one bulk prefetch per
# record; splitd also the q / key rows and v's tile) at Simple GLA and Gated DeltaNet, (4, 8192, 16, 128) and
# (1, 32768, 8, 128): the same variants built with SEQC_WALK_PF = 0 (the code before, its prefetch dead), 1, 2
# (the default) and 4, every variant of each plan at the four cases, two rounds (plans interleaved), then the GPU
# checks of the PF = 2 and 4 plans beside the anchors' Triton precompile, then the anchors at the (4, 8192, 16, 128)
# cases alone.
# The prefetch is not in the tree (slower everywhere, bench/RESULTS.md): apply bench/cuda/chunked/run10-walk-prefetch.patch
# (chunked-core.ts and the CPU emulation's header) before building, and take it out again after.
#   here:   for pf in 0 1 2 4; do SEQC_NVCC_FLAGS="-DSEQC_WALK_PF=$pf" SEQC_PLANS=dist/chunked-plans-run10-pf$pf \
#             SEQC_BUILD_MODELS=simple_gla,gated_deltanet \
#             SEQC_BUILD_VARIANTS='^chunked-(split|splitd)-bf16-k128-v64(-a384)?-r1$|^chunked-split3-bf16-k128-v(16|8)(-a384)?-r1$' \
#             npx tsx bench/cuda/chunked/build.ts; done
#           bash bench/cuda/chunked/bundle-run10.sh
#   device: run command="bash bench/cuda/chunked/run10.sh"
#             carry=[".device", "dist/chunked-plans-run10-pf0", "dist/chunked-plans-run10-pf1", "dist/chunked-plans-run10-pf2",
#                    "dist/chunked-plans-run10-pf4", "dist/chunked-check-run10.mjs", ".anchors", ".whl"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=/tmp/triton-cache
rm -rf "$SEQC_CHUNK_DIR" /tmp/bench-*.json /tmp/check*.json /tmp/check*.log /tmp/warm*.log
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
date +%s > /tmp/t0
now() { echo $(( $(date +%s) - $(cat /tmp/t0) )); }
el() { echo "t=$(now)s $*" | tee -a "$LOG"; }
lim() { local l=$(( $2 - $(now) )); [ $l -gt $1 ] && l=$1; [ $l -lt 1 ] && l=1; echo $l; }
# 1. inputs of the four cases (the same seeds as runs 4-9)
SEQC_ANCHOR_CASES=simple_gla:s2,gated_deltanet:s2,simple_gla:s3,gated_deltanet:s3 timeout 40 python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee -a "$LOG"
el "gen done"
# 2. seqc alone: every variant of each plan at each case, two rounds, plans interleaved
for rep in 1 2; do for pf in 0 2 4 1; do for m in simple_gla gated_deltanet; do
  SEQC_PLANS=dist/chunked-plans-run10-pf$pf SEQC_BENCH_JSON=/tmp/bench-$m-pf$pf-$rep.json timeout $(lim 20 110) \
    node dist/chunked-check-run10.mjs bench $m >> "$LOG" 2>&1 || el "bench $m pf$pf exited with $?"
done; done; done
el "seqc bench done"
# 3. the anchors' Triton precompile (CPU) beside the GPU checks of the PF = 2 and 4 plans (T = 333: six chunks, the
# prefetches inside the walk loop run)
W=$(lim 100 230)
( for i in $(seq 0 12); do SEQC_ANCHOR_CASES=simple_gla:s2,gated_deltanet:s2 timeout $W python3 bench/cuda/chunked/anchors.py warm $i 13 > "/tmp/warm$i.log" 2>&1 & done; wait ) &
WARM=$!
i=0; pids=()
for pf in 2 4; do for m in simple_gla gated_deltanet; do
  SEQC_PLANS=dist/chunked-plans-run10-pf$pf SEQC_CHECK_T=333 SEQC_CHECK_STRESS=0 SEQC_CHECK_JSON=/tmp/check$i.json \
    timeout $(lim 90 225) node dist/chunked-check-run10.mjs check $m > /tmp/check$i.log 2>&1 || echo "check $m pf$pf exited with $?" >> /tmp/check$i.log &
  pids+=($!); i=$((i + 1))
done; done
wait "${pids[@]}"
for f in /tmp/check*.log; do echo "== $f"; cat "$f"; done >> "$LOG"
python3 bench/cuda/chunked/collect.py checks "$OUT" 2>&1 | tee -a "$LOG"
el "checks done"
wait $WARM
el "warm done"
# 4. the anchors alone
SEQC_ANCHOR_CASES=simple_gla:s2,gated_deltanet:s2 timeout $(lim 40 275) python3 bench/cuda/chunked/anchors.py time 2>&1 | tee -a "$LOG" | grep -E "ERROR|copy|anchor" | head -20
el "anchors done"
python3 bench/cuda/chunked/collect.py sets "$OUT" pf 2>&1 | tee -a "$LOG"
el "end"
