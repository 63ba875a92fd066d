#!/bin/bash
# One card call for R as prep_fwd's epilogue (session 15 task A; compiler/backends/cuda/delta-prep-r.ts, seqc_delta_bwd
# PREP_R / LR_DELTA_PREP_R):
# 1) delta_prep_r_bench.py: the kernel alone vs prep_fwd + delta-r's _zb twin at (8, 2048, 16, 64), (1, 32768, 8, 128),
#    (4, 8192, 16, 128), DeltaNet (decay none) and Gated DeltaNet (scalar) modules, floors beside;
# 2) lowrank_bench.py --variants 28 --no-anchor: DeltaNet and Gated DeltaNet bf16 fwd + bwd under CUDA graphs and eager
#    (GPU ms) with PREP_R "off" (the defaults) and "on", one process; gradients vs float64 at (2, 1024) for off / on /
#    head-only; one eager profile of DeltaNet's "on" step a shape (which kernels ran).
# Prepared here (git-ignored): the modules from a clean export with bench/torch/build-chunked.ts (deltanet,
# gated_deltanet), HEAD's runtime/torch/seqc_*.py and bench/torch/*.py beside them (MOD, MOD/bench), tarred.
# Device: carry=["dist/<name>.tgz", ".anchors"], command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MOD=dist/<name> OUT=$OUT bash dist/<name>/bench/delta-prep-r-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296
OUT=${OUT:-/tmp/seqc-prep-r-out}
MOD=${MOD:-dist/torch-s15a}
BENCH=$MOD/bench
mkdir -p "$OUT/profile"
T0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt"
export PYTHONPATH=$PWD/.anchors
timeout "${KERNEL_S:-35}" python3 "$BENCH/delta_prep_r_bench.py" "$MOD" --kreps "${KREPS:-20}" --out "$OUT/kernels.json" > "$OUT/kernels.log" 2>&1
echo "kernels: rc $? at $(( $(date +%s) - T0 ))s"
timeout "${STEP_S:-95}" python3 "$BENCH/lowrank_bench.py" "$MOD" --models deltanet,gated_deltanet --shapes "${SHAPES:-8x2048x16x64,1x32768x8x128,4x8192x16x128}" \
  --variants 28 --no-anchor --accuracy 2x1024 --reps "${REPS:-10}" --cap-s "${CAP_S:-2}" --budget "${BUDGET:-75}" --profile "$OUT/profile" --out "$OUT/steps.json" > "$OUT/steps.log" 2>&1
echo "steps: rc $? at $(( $(date +%s) - T0 ))s"
tail -n 8 "$OUT/kernels.log"
grep -a "accuracy\|GPU ms\|failed\|Error\|error" "$OUT/steps.log" | tail -n 30
tail -n 24 "$OUT/steps.log"
