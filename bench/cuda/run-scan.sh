#!/usr/bin/env bash
# The scan bench's device command: check the pointwise models (hgrn and the check models) x every
# variant (shipped and swept) against the float64 interpreter, time every hgrn variant at B=8 D=1536
# T=16384 beside the copy bandwidth, then the Triton anchor on the same inputs, then the short table.
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
python3 bench/cuda/scan_summary.py
