#!/bin/bash
# One card call (session 14, helper B): the delta backward's walks, today's vs the wider 3xTF32 twins
# (delta-walk-mma.ts DELTA_WALK_WIDE_CONFIGS, seqc_delta_bwd.WALK "wide"):
# 1) delta_walk_bench.py: every walk of MOD/delta-walk-b14.json (bench/torch/delta-walk-module.ts) alone at
#    (4, 8192, 16, 128), (1, 32768, 8, 128), (8, 2048, 16, 64): GPU ms of the two walks, floor, error vs float64;
# 2) delta_walk_step.py: DeltaNet bf16 fwd+bwd, WALK "default" vs "wide", GPU ms under CUDA graphs and eager, the walk
#    entries launched, eager profiles; gradients vs float64 (bf16 and fp32 inputs) at 2x1024 (H 16, K 64; H 8, K 128) and
#    (8, 1024, 16, 128).
# Prepared here (git-ignored): MOD from a clean export of HEAD plus the walk's files with bench/torch/build-chunked.ts
# (deltanet), bench/torch/*.py in MOD/bench, the walks' module in MOD/delta-walk-b14.json, then
# `tar -C dist -czf dist/<name>.tgz <name>`.
# Device: carry=["dist/<name>.tgz"], command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MOD=dist/<name> OUT=$OUT bash dist/<name>/bench/delta-walk-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296
OUT=${OUT:-/tmp/seqc-delta-walk-out}
MOD=${MOD:-dist/torch-b14}
mkdir -p "$OUT/profile"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt" | tee -a "$LOG"
timeout "${KERNEL_S:-60}" python3 "$MOD/bench/delta_walk_bench.py" "$MOD/delta-walk-b14.json" "$MOD" --out "$OUT/walks.json" > "$OUT/walks.log" 2>&1
el "delta_walk_bench exit $?"
timeout "${STEP_S:-120}" python3 "$MOD/bench/delta_walk_step.py" "$MOD" --profile "$OUT/profile" --out "$OUT/step.json" > "$OUT/step.log" 2>&1
el "delta_walk_step exit $?"
grep -v "^ " "$OUT/walks.log" | tail -6
grep -E "GPU ms|accuracy|Error|error" "$OUT/step.log" | tail -20
