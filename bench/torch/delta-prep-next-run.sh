#!/bin/bash
# One card call for task C's untimed prep forms (prepared in session 14, not run): bench/torch/delta-prep-run.sh twice,
# each pair of modules from one clean export of HEAD, built with bench/torch/build-chunked.ts:
#   1) RWKV-7's per-key twins, batched loads and bf16 V / dY (config batched: true; 6defe7a, 55b565c):
#      dist/s14c-key (before: HEAD 55b565c's Rwkv7 module; after: DELTA_PREP_KEY_MMA_CONFIGS given batched: true),
#      kernels alone at (8, 2048, 16, 64) and (4, 8192, 16, 128), RWKV-7's bf16 step at (8, 2048, 16, 64), gradients vs
#      float64 at (2, 1024);
#   2) the staged twins at 512 threads a block (config threads: 512; 3a0d9cd): dist/s14c-t512 (before: HEAD 3a0d9cd's
#      DeltaNet and Gated DeltaNet modules, 256 threads; after: DELTA_PREP_MMA_CONFIGS given threads: 512), kernels
#      alone and DeltaNet's bf16 step at both shapes, gradients vs float64.
# Device: carry=["dist/s14c-key.tgz", "dist/s14c-t512.tgz"], timeout_s 200, command="mkdir -p dist &&
#   tar -C dist -xzf dist/s14c-key.tgz && tar -C dist -xzf dist/s14c-t512.tgz && OUT=$OUT bash dist/s14c-t512/bench/delta-prep-next-run.sh"
# A form wins where its kernels are faster at both shapes and its gradients match (then: batched: true in
# DELTA_PREP_KEY_MMA_CONFIGS, threads: 512 in DELTA_PREP_MMA_CONFIGS, compiler/backends/cuda/delta-prep.ts).
set -uo pipefail
OUT=${OUT:-/tmp/delta-prep-next-out}
HERE=$(dirname "$0")
mkdir -p "$OUT/rwkv7" "$OUT/t512"
D=dist/s14c-key OUT="$OUT/rwkv7" BENCH_S=${BENCH1_S:-80} ARGS="--models rwkv7 --step-models rwkv7 --step-shapes 8x2048x16x64" bash "$HERE/delta-prep-run.sh"
D=dist/s14c-t512 OUT="$OUT/t512" BENCH_S=${BENCH2_S:-80} bash "$HERE/delta-prep-run.sh"
