#!/usr/bin/env bash
# The scan bench's device command: check the pointwise models (hgrn and the check models) x every
# variant (shipped and swept) against the float64 interpreter, time every hgrn variant at B=8 D=1536
# T=16384 beside the copy bandwidth, then the Triton anchor and the ceilings on the same inputs, then
# (NCU=1) a few hardware counters of chosen kernels with Nsight Compute, then the short table.
#   run (device tool) with carry [".device", "dist"]:  bash bench/cuda/run-scan.sh
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_BENCH_DIR=/tmp/seqc-bench PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$SEQC_BENCH_DIR"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv | tee "$OUT/nvidia-smi.txt"
SEQC_MODELS=${SEQC_MODELS-hgrn,ema2,lru_gate} SEQC_BENCH_CELLS=0 SEQC_BENCH_GENERIC=${SEQC_BENCH_GENERIC-0} \
  node dist/cuda-check.mjs 2>&1 | tee "$OUT/node.log" | grep -v "^check ok"
python3 bench/cuda/scan_anchor.py 2>&1 | tee "$OUT/scan_anchor.log"
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv,noheader | tee -a "$OUT/nvidia-smi.txt"
if [ -n "${NCU_KERNELS:-}" ]; then
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  timeout ${NCU_TIMEOUT:-120} "$NCU" --clock-control none --kernel-name "regex:scan_chain_(${NCU_KERNELS})\$" \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct,sm__throughput.avg.pct_of_peak_sustained_elapsed,smsp__issue_active.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active \
    --section WarpStateStats \
    env SEQC_SKIP_CHECKS=1 SEQC_BENCH_WARMUP=0 SEQC_BENCH_REPS=1 SEQC_BENCH_BATCH=0 SEQC_BENCH_SAVE=0 SEQC_BENCH_CELLS=0 SEQC_BENCH_GENERIC=0 \
    SEQC_BENCH_ONLY="chain-(${NCU_KERNELS})\$" OUT=/tmp/ncu-out node dist/cuda-check.mjs > "$OUT/ncu.txt" 2>&1
  echo "ncu exit $?"
fi
python3 bench/cuda/scan_summary.py
if [ -s "$OUT/ncu.txt" ]; then
  echo; echo "ncu:"
  grep -E "scan_chain_|gpu__time_duration|dram__bytes|dram__throughput|lts__t_sector_hit|sm__throughput|issue_active|warps_active|stalled|cycles being stalled|==ERROR|==WARNING" "$OUT/ncu.txt" | cut -c1-260 | head -60
fi
