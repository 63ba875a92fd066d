#!/usr/bin/env bash
# The device command (one call does everything): check every model x form, time seqc's CUDA variants,
# then the PyTorch anchors, then print the side-by-side table.
#   run (device tool) with carry [".device", "dist"]:  bash bench/cuda/run.sh
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_BENCH_DIR=/tmp/seqc-bench PYTHONUNBUFFERED=1
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee "$OUT/nvidia-smi.txt"
node dist/cuda-check.mjs 2>&1 | tee "$OUT/node.log" | grep -v "^check ok" 
python3 bench/cuda/anchors.py 2>&1 | tee "$OUT/torch.log"
python3 bench/cuda/summary.py
