#!/usr/bin/env bash
# Run 26 (one call, <= 280 s): DeltaNet and Gated DeltaNet at (4, 8192, 16, 128) (s2) and (1, 32768, 8, 128) (s3): phase A
# with the record's copies and alpha v's load beside the inverse (-iw-io, -iw-ios; chunked-phase-a-ovl.ts) against
# auto's picks (split -a512-iw-w512 at s2, split3 -a384-iw-wc at s3): bench/cuda/chunked/run9.sh with RUN=26, two rounds,
# every variant of build-run26.sh's plans at both cases (phase A and walk also timed alone), a process per model and
# round, seqc alone on the GPU; GPU checks of all of them against float64 (B = 2, T = 70, initial state); then fla's
# chunk_delta_rule and chunk_gated_delta_rule alone at the four cases; last, Nsight Compute's warp states of phase A
# (auto's and -a512-iw-ios) at s2 for DeltaNet if time is left. $OUT keeps run.log, the JSON files, run26.txt (a line
# per variant: forward ms per round [phase A, walk]) and ncu-*.txt.
#   here:   bash bench/cuda/chunked/build-run26.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run26.sh" timeout_s=290
#     carry=[".device", "dist/chunked-plans-run26", "dist/chunked-check-run26.mjs", ".anchors", ".whl"]
set -uo pipefail
export OUT=${OUT:-$PWD/out}
C=deltanet:s2,gated_deltanet:s2,deltanet:s3,gated_deltanet:s3
RUN=${RUN:-26} ROUNDS=${ROUNDS:-2} MODELS='deltanet gated_deltanet' ALL=$C SEQC_ANCHOR_CASES=$C \
  EXPECT='deltanet:s2=split-bf16-k128-v64-a512-iw-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-w512 deltanet:s3=split3-bf16-k128-v16-a384-iw-wc gated_deltanet:s3=split3-bf16-k128-v16-a384-iw-wc' \
  CHECK_EXTRA='split-bf16-k128-v64-a512-iw-ios?-w512|split3-bf16-k128-v16-a(384|512)-iw-ios?-wc' \
  B_END=110 W_END=165 K_END=160 A_END=215 C_END=225 RP_TIMEOUT=230 RP_TAIL=40 RP_TXT=run26.txt RP_TABLE='--shape --parts --width 50' RP_LS=0 \
  bash "$(dirname "$0")/run-plans.sh"
# Nsight Compute (if the call has time): phase A's warp states, auto's and -a512-iw-ios, DeltaNet at s2 (one forward each)
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
M=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed,smsp__issue_active.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active
if [ -n "$NCU" ] && [ $SECONDS -lt 215 ]; then
  mkdir -p /tmp/ncu-out; export SEQC_CHUNK_DIR=/dev/shm/seqc-chunk SEQC_PLANS=dist/chunked-plans-run26
  [ -d "$SEQC_CHUNK_DIR" ] || export SEQC_CHUNK_DIR=/tmp/seqc-chunk
  timeout 30 "$NCU" --clock-control none --kernel-name "regex:phaseA" --launch-skip 2 --launch-count 1 --metrics $M --section WarpStateStats --page raw \
    env OUT=/tmp/ncu-out SEQC_BENCH_AUTO_ONLY=1 SEQC_BENCH_JSON=/tmp/ncu-a.json node dist/chunked-check-run26.mjs bench deltanet s2 > "$OUT/ncu-auto.txt" 2>&1
  echo "ncu auto exit $?"
  [ $SECONDS -lt 245 ] && timeout 35 "$NCU" --clock-control none --kernel-name "regex:phaseA.*_iw_ios" --launch-skip 2 --launch-count 1 --metrics $M --section WarpStateStats --page raw \
    env OUT=/tmp/ncu-out SEQC_BENCH_ALL=deltanet:s2 SEQC_BENCH_JSON=/tmp/ncu-b.json node dist/chunked-check-run26.mjs bench deltanet s2 > "$OUT/ncu-ios.txt" 2>&1
  echo "ncu ios exit $?"
  for f in "$OUT"/ncu-*.txt; do echo "== $f"; grep -E "seqc_.*chunk_|gpu__time_duration.sum|dram__bytes_(read|write).sum |dram__throughput.avg.pct|sm__throughput.avg.pct|smsp__issue_active.avg.pct|sm__warps_active|issue_stalled|==ERROR" "$f" | awk '{ if ($NF+0 >= 0.5 || /seqc_|ERROR|bytes|time|warps_active/) print }' | cut -c1-150 | head -40; done
else echo "ncu skipped (none, or t=${SECONDS}s)"; fi
ls -la "$OUT"
