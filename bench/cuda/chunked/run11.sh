#!/usr/bin/env bash
# Run 11 (one call): the walk's y stores with compile-time strides (bench/cuda/chunked/walk-post-strides.patch, from
# run 10's PTX count: ~26 -> ~11 instructions a y element) against HEAD's, Simple GLA and Gated DeltaNet at all three
# shapes: the same variants built from a worktree of HEAD ("old") and of HEAD with the patch ("new"), every variant
# of each plan at each case, three rounds (plans interleaved), then the GPU checks of the new plans beside the
# anchors' Triton precompile, then the anchors at the (4, 8192, 16, 128) cases alone.
#   here:   for w in old new; do (cd <worktree $w> && SEQC_PLANS=/work/main/dist/chunked-plans-run11-$w \
#             SEQC_BUILD_MODELS=simple_gla,gated_deltanet \
#             SEQC_BUILD_VARIANTS='^chunked-(split|splitd)-bf16-k128-v64(-a384)?-r1$|^chunked-split3-bf16-k128-v(16|8)(-a384)?-r1$|^chunked-(split|splitd)-bf16-k64-v32-r1$' \
#             npx tsx bench/cuda/chunked/build.ts); done
#           bash bench/cuda/chunked/bundle-run10.sh (the runner; the kernels are in the plans)
#   device: run command="bash bench/cuda/chunked/run11.sh"
#             carry=[".device", "dist/chunked-plans-run11-old", "dist/chunked-plans-run11-new", "dist/chunked-check-run10.mjs", ".anchors", ".whl"]
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
# 1. inputs of the six cases (the same seeds as runs 4-10)
SEQC_ANCHOR_CASES=simple_gla:s1,gated_deltanet:s1,simple_gla:s2,gated_deltanet:s2,simple_gla:s3,gated_deltanet:s3 timeout 40 python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee -a "$LOG"
el "gen done"
# 2. seqc alone: every variant of each plan at each case, two rounds, plans interleaved
for rep in 1 2 3; do for pf in old new; do for m in simple_gla gated_deltanet; do
  SEQC_PLANS=dist/chunked-plans-run11-$pf SEQC_BENCH_JSON=/tmp/bench-$m-pf$pf-$rep.json timeout $(lim 25 130) \
    node dist/chunked-check-run10.mjs bench $m >> "$LOG" 2>&1 || el "bench $m pf$pf exited with $?"
done; done; done
el "seqc bench done"
# 3. the anchors' Triton precompile (CPU) beside the GPU checks of the new plans (T = 333: six chunks, a partial last one)
W=$(lim 100 250)
( for i in $(seq 0 12); do SEQC_ANCHOR_CASES=simple_gla:s2,gated_deltanet:s2 timeout $W python3 bench/cuda/chunked/anchors.py warm $i 13 > "/tmp/warm$i.log" 2>&1 & done; wait ) &
WARM=$!
i=0; pids=()
for pf in new; do for m in simple_gla gated_deltanet; do
  SEQC_PLANS=dist/chunked-plans-run11-$pf SEQC_CHECK_T=333 SEQC_CHECK_STRESS=0 SEQC_CHECK_JSON=/tmp/check$i.json \
    timeout $(lim 90 245) node dist/chunked-check-run10.mjs check $m > /tmp/check$i.log 2>&1 || echo "check $m pf$pf exited with $?" >> /tmp/check$i.log &
  pids+=($!); i=$((i + 1))
done; done
wait "${pids[@]}"
for f in /tmp/check*.log; do echo "== $f"; cat "$f"; done >> "$LOG"
python3 bench/cuda/chunked/collect.py checks "$OUT" 2>&1 | tee -a "$LOG"
el "checks done"
wait $WARM
el "warm done"
# 4. the anchors alone
SEQC_ANCHOR_CASES=simple_gla:s2,gated_deltanet:s2 timeout $(lim 40 295) python3 bench/cuda/chunked/anchors.py time 2>&1 | tee -a "$LOG" | grep -E "ERROR|copy|anchor" | head -20
el "anchors done"
python3 bench/cuda/chunked/collect.py sets "$OUT" "" 2>&1 | tee -a "$LOG"
el "end"
