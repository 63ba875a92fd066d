#!/usr/bin/env bash
# mLSTM's chunked form on the H100, one call (WGSL through Dawn/Vulkan and CUDA fp32/bf16; checks and timings).
#   here:   npx tsx bench/mlstm/build.ts && bash bench/mlstm/bundle.sh
#   device: run  command="bash bench/mlstm/run.sh"  carry=[".device", "dist/mlstm"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$OUT/run.log"
timeout 100 node dist/mlstm/run.mjs 2>&1 | tee -a "$OUT/run.log"
