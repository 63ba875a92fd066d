#!/usr/bin/env bash
# Run 31 (one call on the H200, <= 220 s): at (4, 8192, 16, 128) Gated DeltaNet's and DeltaNet's auto pick
# split-v64-a512-iw-ios-w512 beside -nb (phase A's inverse warps and helpers on their own named barriers), -wc-w512 and
# -qxi, alone and combined (-iw-ios[-nb][-qxi][-wc]-w512); fla chunk_gated_delta_rule and chunk_delta_rule in the same
# call. As run30.sh: three seqc rounds (the second reversed), GPU checks beside fla's Triton precompile, fla alone,
# compare.py. Then, if the call has time, Nsight Compute's warp states of Gated DeltaNet's phase A, auto's and -nb's
# (one forward each; $OUT/ncu-*.txt).
#   here:   bash bench/cuda/chunked/build-run31.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run31.sh" timeout_s=220
#     carry=[".device", "dist/chunked-plans-run31", "dist/chunked-check-run31.mjs", ".anchors", ".whl"]
set -uo pipefail
export OUT=${OUT:-$PWD/out}
CASES=gated_deltanet:s2,deltanet:s2
RUN=${RUN:-31}
RUN=$RUN ROUNDS=${ROUNDS:-3} REVERSE_EVEN=1 MODELS="gated_deltanet deltanet" ALL=$CASES SEQC_ANCHOR_CASES=$CASES \
  CHECK_EXTRA='split-bf16-k128-v64-a512-iw-ios(-nb)?(-qxi)?(-wc)?-w512' \
  EXPECT='gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512' \
  B_END=110 W_END=145 K_END=145 A_END=180 C_END=190 RP_TIMEOUT=195 RP_TAIL=30 RP_GREP=1 RP_TXT=run31.txt RP_TABLE='--summary --rel' RP_LS=0 \
  bash "$(dirname "$0")/run-plans.sh"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
M=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed,smsp__issue_active.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active
if [ -n "$NCU" ] && [ $SECONDS -lt 160 ]; then
  mkdir -p /tmp/ncu-out; export SEQC_CHUNK_DIR=/dev/shm/seqc-chunk SEQC_PLANS=dist/chunked-plans-run$RUN
  [ -d "$SEQC_CHUNK_DIR" ] || export SEQC_CHUNK_DIR=/tmp/seqc-chunk
  timeout 25 "$NCU" --clock-control none --kernel-name "regex:phaseA" --launch-skip 2 --launch-count 1 --metrics $M --section WarpStateStats --page raw \
    env OUT=/tmp/ncu-out SEQC_BENCH_AUTO_ONLY=1 SEQC_BENCH_JSON=/tmp/ncu-a.json node dist/chunked-check-run$RUN.mjs bench gated_deltanet s2 > "$OUT/ncu-auto.txt" 2>&1
  echo "ncu auto exit $?"
  [ $SECONDS -lt 185 ] && timeout 30 "$NCU" --clock-control none --kernel-name "regex:phaseA_bf16_k128_p128_r1_t512_iw_ios_nb\$" --launch-skip 2 --launch-count 1 --metrics $M --section WarpStateStats --page raw \
    env OUT=/tmp/ncu-out SEQC_BENCH_ALL=gated_deltanet:s2 SEQC_BENCH_JSON=/tmp/ncu-b.json node dist/chunked-check-run$RUN.mjs bench gated_deltanet s2 > "$OUT/ncu-nb.txt" 2>&1
  echo "ncu nb exit $?"
  for f in "$OUT"/ncu-*.txt; do echo "== $f"; grep -E "seqc_.*chunk_|gpu__time_duration.sum|dram__bytes_(read|write).sum |dram__throughput.avg.pct|sm__throughput.avg.pct|smsp__issue_active.avg.pct|sm__warps_active|issue_stalled|==ERROR" "$f" | awk '{ if ($NF+0 >= 0.5 || /seqc_|ERROR|bytes|time|warps_active/) print }' | cut -c1-150 | head -40; done
else echo "ncu skipped (none, or t=${SECONDS}s)"; fi
ls -la "$OUT"
