#!/usr/bin/env bash
# Run 10b (one call, after run 10's L2 prefetch came out slower everywhere): where the walk's time goes at
# (4, 8192, 16, 128), and a three-record pipeline for Simple GLA's split walk (its shared memory fits 3 x 53.8 KiB).
# 1. Simple GLA s2: split-k128-v64 with two records in flight (dist/chunked-plans-run10-ns2, HEAD) and with
#    three (dist/chunked-plans-run10-ns3, built from a worktree of HEAD whose walk layout takes NSTAGE = 3 where
#    3 stages + the rest fit WALKS_SMEM_MAX), two rounds each, alone; the GPU check of the three-stage walk.
# 2. Nsight Compute on phase A and the walk of one forward (the third): Simple GLA split and splitd, the three-stage
#    walk, Gated DeltaNet split-a384 (DRAM bytes, L2 hit rate, issue activity, warp stall reasons).
#   here:   run 10's plans, plus
#           SEQC_PLANS=dist/chunked-plans-run10-d SEQC_BUILD_MODELS=simple_gla SEQC_BUILD_VARIANTS='^chunked-splitd-bf16-k128-v64-r1$' npx tsx bench/cuda/chunked/build.ts
#           (in a worktree of HEAD with chunkLayout's walk NSTAGE = 3 * s + rest <= WALKS_SMEM_MAX ? 3 : 2)
#           SEQC_PLANS=.../dist/chunked-plans-run10-ns3 SEQC_BUILD_MODELS=simple_gla SEQC_BUILD_VARIANTS='^chunked-split-bf16-k128-v64-r1$' npx tsx bench/cuda/chunked/build.ts
#   device: run command="bash bench/cuda/chunked/run10b.sh"
#             carry=[".device", "dist/chunked-plans-run10-pf0", "dist/chunked-plans-run10-d", "dist/chunked-plans-run10-ns2", "dist/chunked-plans-run10-ns3", "dist/chunked-check-run10.mjs", ".anchors", ".whl"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1
rm -rf "$SEQC_CHUNK_DIR" /tmp/bench-*.json
mkdir -p "$OUT"
LOG="$OUT/run.log"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
date +%s > /tmp/t0
now() { echo $(( $(date +%s) - $(cat /tmp/t0) )); }
el() { echo "t=$(now)s $*" | tee -a "$LOG"; }
lim() { local l=$(( $2 - $(now) )); [ $l -gt $1 ] && l=$1; [ $l -lt 1 ] && l=1; echo $l; }
SEQC_ANCHOR_CASES=simple_gla:s2,gated_deltanet:s2 timeout 30 python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee -a "$LOG"
el "gen done"
for rep in 1 2; do for p in ns2 ns3; do
  SEQC_PLANS=dist/chunked-plans-run10-$p SEQC_BENCH_JSON=/tmp/bench-$p-$rep.json timeout $(lim 15 45) \
    node dist/chunked-check-run10.mjs bench simple_gla s2 >> "$LOG" 2>&1 || el "bench $p exited with $?"
done; done
grep -E "^bench simple" "$LOG"
el "bench done"
SEQC_PLANS=dist/chunked-plans-run10-ns3 SEQC_CHECK_T=333 SEQC_CHECK_STRESS=0 SEQC_CHECK_JSON=$OUT/check-ns3.json timeout $(lim 25 70) \
  node dist/chunked-check-run10.mjs check simple_gla 2>&1 | tee -a "$LOG" | grep -E "check|worst"
el "check done"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
M=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct,sm__throughput.avg.pct_of_peak_sustained_elapsed,smsp__issue_active.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active
prof() { # $1 tag, $2 plan, $3 model
  SEQC_PLANS=dist/chunked-plans-run10-$2 SEQC_BENCH_AUTO_ONLY=1 SEQC_BENCH_JSON=/tmp/ncu-$1.json timeout $(lim 30 $4) "$NCU" --clock-control none \
    --kernel-name "regex:chunk_(phase|walk)" --launch-skip 4 --launch-count 2 --metrics $M --section WarpStateStats --page raw \
    node dist/chunked-check-run10.mjs bench $3 s2 > "$OUT/ncu-$1.txt" 2>&1
  el "ncu $1 exit $?"
}
prof sgla-split pf0 simple_gla 75
prof sgla-splitd d simple_gla 95
prof gdn-split pf0 gated_deltanet 110
prof sgla-ns3 ns3 simple_gla 122
for f in "$OUT"/ncu-*.txt; do echo "== $f"; grep -E "seqc_.*chunk_|gpu__time_duration.sum|dram__bytes_(read|write).sum |dram__throughput.avg.pct|lts__t_sector_hit_rate.pct |sm__throughput.avg.pct|smsp__issue_active.avg.pct|issue_stalled|==ERROR" "$f" | awk '{ if ($NF+0 >= 1 || /seqc_|ERROR|bytes|time/) print }' | cut -c1-160 | head -40; done
el "end"
