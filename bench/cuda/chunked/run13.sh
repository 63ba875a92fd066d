#!/usr/bin/env bash
# Run 13 (one call): where phase A's time goes at the seven cases that missed 2x in run 12, and the candidates.
# 1. seqc alone, two rounds: every variant of dist/chunked-plans-run13 (auto's picks at DeltaNet, Gated DeltaNet, GLA
#    and RWKV-7, each low-rank phase A also with the inverse by warp products `-iw`, and phase A with 384 threads at
#    K = 64) at the three shapes; then the four ablation builds of the same phase A kernels once (SEQC_ABL = 1: loads
#    only, 2: + A and Aq, 3: + the inverse, 4: + the scale and late alpha v, no record; run13-phase-a-ablation.patch).
# 2. the GPU checks of the -iw variants (T = 70; DeltaNet and Gated DeltaNet also the ragged T = 333) beside Nsight Compute on one forward
#    of DeltaNet (1, 32768, 8, 128) (phase A, state walk, readout), GLA and RWKV-7 at (8, 2048, 16, 64).
#   here:   bash bench/cuda/chunked/build-run13.sh && RUN=13 bash bench/cuda/chunked/bundle-run9.sh
#   device: run command="bash bench/cuda/chunked/run13.sh"
#             carry=[".device", "dist/chunked-plans-run13", "dist/chunked-plans-run13-abl1", "dist/chunked-plans-run13-abl2",
#                    "dist/chunked-plans-run13-abl3", "dist/chunked-plans-run13-abl4", "dist/chunked-check-run13.mjs", ".anchors"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1
rm -rf "$SEQC_CHUNK_DIR" /tmp/bench-*.json /tmp/check*.json /tmp/check*.log
mkdir -p "$OUT"
LOG="$OUT/run.log"
export PYTHONPATH=$PWD/.anchors
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
date +%s > /tmp/t0
now() { echo $(( $(date +%s) - $(cat /tmp/t0) )); }
el() { echo "t=$(now)s $*" | tee -a "$LOG"; }
lim() { local l=$(( $2 - $(now) )); [ $l -gt $1 ] && l=$1; [ $l -lt 1 ] && l=1; echo $l; }
MODELS="deltanet gated_deltanet gla rwkv7"
ALL=$(for m in $MODELS; do for s in s1 s2 s3; do echo -n "$m:$s,"; done; done)
SEQC_ANCHOR_CASES=$ALL timeout 40 python3 bench/cuda/chunked/anchors.py gen 2>&1 | tail -3 | tee -a "$LOG"
el "gen done"
b() { # $1 plan suffix, $2 set name, $3 round, $4 model
  SEQC_PLANS=dist/chunked-plans-run13$1 SEQC_BENCH_ALL=$ALL SEQC_BENCH_JSON=/tmp/bench-$4-pf$2-$3.json timeout $(lim 25 150) \
    node dist/chunked-check-run13.mjs bench $4 >> "$LOG" 2>&1 || el "bench $4 $2 exited with $?"
}
for m in $MODELS; do b "" new 1 $m; done
for n in 1 2 3 4; do for m in $MODELS; do b -abl$n abl$n 1 $m; done; done
for m in $MODELS; do b "" new 2 $m; done
el "bench done"
python3 bench/cuda/chunked/collect.py sets "$OUT" 2>&1 | tee "$OUT/sets.txt" | tee -a "$LOG"
# 2. checks (CPU-bound float64 references) beside Nsight Compute
i=0; pids=()
for mt in deltanet:70 deltanet:333 gated_deltanet:70 gated_deltanet:333 rwkv7:70; do m=${mt%:*} t=${mt#*:}
  SEQC_PLANS=dist/chunked-plans-run13 SEQC_CHECK_STRESS=0 SEQC_CHECK_QUICK=1 SEQC_CHECK_T=$t SEQC_CHECK_VARIANTS="-iw-r[12]\$" SEQC_CHECK_JSON=/tmp/check$i.json \
    timeout $(lim 70 225) node dist/chunked-check-run13.mjs check $m > /tmp/check$i.log 2>&1 || echo "check $m exited with $?" >> /tmp/check$i.log &
  pids+=($!); i=$((i + 1))
done
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
M=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct,sm__throughput.avg.pct_of_peak_sustained_elapsed,smsp__issue_active.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active
prof() { # $1 tag, $2 model, $3 shape, $4 kernels per forward, $5 deadline
  SEQC_PLANS=dist/chunked-plans-run13 SEQC_BENCH_AUTO_ONLY=1 SEQC_BENCH_JSON=/tmp/ncu-$1.json timeout $(lim 40 $5) "$NCU" --clock-control none \
    --kernel-name "regex:chunk_(phase|walk|out)" --launch-skip $((2 * $4)) --launch-count $4 --metrics $M --section WarpStateStats --page raw \
    node dist/chunked-check-run13.mjs bench $2 $3 > "$OUT/ncu-$1.txt" 2>&1
  el "ncu $1 exit $?"
}
prof deltanet-s3 deltanet s3 3 190
prof rwkv7-s1 rwkv7 s1 2 205
prof gla-s1 gla s1 2 220
wait "${pids[@]}"
cat /tmp/check*.log >> "$LOG"
python3 bench/cuda/chunked/collect.py checks "$OUT" 2>&1 | tee -a "$LOG"
for f in "$OUT"/ncu-*.txt; do echo "== $f"; grep -E "seqc_.*chunk_|gpu__time_duration.sum|dram__bytes_(read|write).sum |dram__throughput.avg.pct|lts__t_sector_hit_rate.pct |sm__throughput.avg.pct|smsp__issue_active.avg.pct|sm__warps_active|issue_stalled|==ERROR" "$f" | awk '{ if ($NF+0 >= 0.5 || /seqc_|ERROR|bytes|time|warps_active/) print }' | cut -c1-150 | head -45; done
el "end"
