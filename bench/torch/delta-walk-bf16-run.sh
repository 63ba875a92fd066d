#!/bin/bash
# One card call (session 15, helper B): the reverse walk in bf16 (delta-walk-bf16.ts, seqc_delta_bwd LR_DELTA_WALK_BF16):
# 1) delta_walk_bf16_bench.py: every walk of MOD/delta-walk-bf16.json (bench/torch/delta-walk-bf16-module.ts) alone, the
#    reverse direction, at (4, 8192, 16, 128), (1, 32768, 8, 128), (8, 2048, 16, 64): GPU ms, floor, error vs float64;
# 2) delta_walk_bf16_step.py: DeltaNet's and Gated DeltaNet's bf16 fwd+bwd, WALK_BF16 off / on / all: gradients vs
#    float64 at (2, 1024, 16, 64), GPU ms under CUDA graphs and eager at the three shapes (PROFILE=1: eager profiles of
#    each model's first shape under each value, in profiles.tgz).
# Prepared here (git-ignored): MOD from a clean export of HEAD with bench/torch/build-chunked.ts (deltanet,
# gated_deltanet), bench/torch/*.py in MOD/bench, the walks' module in MOD/delta-walk-bf16.json, then
# `tar -C dist -czf dist/<name>.tgz <name>`.
# Device: carry=["dist/<name>.tgz"], command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MOD=dist/<name> OUT=$OUT bash dist/<name>/bench/delta-walk-bf16-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296
OUT=${OUT:-/tmp/seqc-delta-walk-bf16-out}
MOD=${MOD:-dist/torch-s15b}
mkdir -p "$OUT"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt" | tee -a "$LOG"
timeout "${KERNEL_S:-40}" python3 "$MOD/bench/delta_walk_bf16_bench.py" "$MOD/delta-walk-bf16.json" "$MOD" --out "$OUT/walks.json" > "$OUT/walks.log" 2>&1
el "delta_walk_bf16_bench exit $?"
mkdir -p "$OUT/profile"
timeout "${STEP_S:-110}" python3 "$MOD/bench/delta_walk_bf16_step.py" "$MOD" --budget "${BUDGET:-95}" ${PROFILE:+--profile "$OUT/profile"} --out "$OUT/step.json" > "$OUT/step.log" 2>&1
el "delta_walk_bf16_step exit $?"
tar -C "$OUT" -czf "$OUT/profiles.tgz" profile && rm -rf "$OUT/profile"
grep -A4 "^summary" "$OUT/walks.log"
grep -A12 "^summary" "$OUT/step.log" || tail -20 "$OUT/step.log"
