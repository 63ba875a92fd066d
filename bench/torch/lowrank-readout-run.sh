#!/bin/bash
# One GPU call for the fused readouts (compiler/backends/cuda/lowrank-readout.ts; seqc_chunked_lowrank LR_FUSED_READ,
# issue 6): the kernel alone beside ChunkCore's torch ops (bench/torch/lowrank_readout_bench.py), then
# bench/torch/lowrank-run.sh with --variants 8 (check.py --only-chunked per model while fla's kernels precompile; fwd+bwd
# with the readouts by torch ops and by the kernel, fp32 and bf16, beside fla, one process; sections, a profile,
# gradients vs float64 at 2 x 2048).
# Prepared here (git-ignored):
#   npx tsx bench/torch/build-chunked.ts dist/torch-lowrank-h200b deltanet,gated_deltanet     # before lowrank-readout.ts
#   npx tsx bench/torch/lowrank-patch-core.ts dist/torch-lowrank-h200b dist/torch-lowrank-h200c
#   npx tsx bench/torch/lowrank-reference.ts dist/torch-lowrank-h200c/ref deltanet gated_deltanet
# Device: run command="timeout 275 bash bench/torch/lowrank-readout-run.sh" carry=["dist/torch-lowrank-h200c"]
set -uo pipefail
OUT=${OUT:-/tmp/seqc-readout-out}
MOD=${MODULES:-dist/torch-lowrank-h200c}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee "$OUT/card.txt"
# READ_ALSO: NAME=DIR builds whose readout kernels the kernel bench times beside (e.g. v4=dist/...-v4 from
# LR_READ_LOADS=vec4 npx tsx bench/torch/lowrank-patch-core.ts <built> <dir>)
timeout "${READ_S:-50}" python3 bench/torch/lowrank_readout_bench.py "$MOD" ${READ_ALSO:-} --reps 20 --out "$OUT/readout.json" 2>&1 | tee "$OUT/readout.txt"
MODULES="$MOD" MODELS=${MODELS:-deltanet,gated_deltanet} CHECK_S=${CHECK_S:-70} WARM_S=${WARM_S:-60} BENCH_S=${BENCH_S:-110} BUDGET=${BUDGET:-90} \
  STEP_SHAPES="" VARIANTS=8 PROFILE=1 ACCURACY=${ACCURACY:-2x2048} SHAPES=8x2048x16x64 OUT="$OUT" bash bench/torch/lowrank-run.sh
