#!/bin/bash
# One GPU call for bf16 tensors through the torch target's chunked path (issue 6): bench/torch/bf16_run.py's
# accuracy checks (bf16 gradients vs seqc's float64 kernels at the rounded values, and those vs the interpreter's
# reference) while worker processes precompile the anchors' Triton kernels, then its timing (seqc fp32, seqc bf16,
# anchor bf16 at (8, 2048, 16, 64), one process).
# Prepared here (git-ignored; fla / mamba_ssm sources in .anchors/ and the einops wheel in .whl/, never committed):
#   npx tsx bench/torch/build-chunked.ts dist/torch-chunked-bf16 simple_gla,mamba2,gla dist/torch-chunked
# Device: run  command="timeout 230 bash bench/torch/bf16-run.sh"  carry=["dist/torch-chunked-bf16", ".anchors", ".whl"]
# $OUT gets run.log, bf16.json, warm.log.
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-bf16-out}
MOD=${MODULES:-dist/torch-chunked-bf16}
MODELS=${MODELS:-simple_gla,mamba2,gla}
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
PIDS=()
W=${WARM_WORKERS:-8}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-70}" python3 bench/torch/chunked_bench.py "$MOD" --models "${WARM_MODELS:-simple_gla,gla,mamba2}" --warm-fla "$i" "$W" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${ACC_S:-80}" python3 bench/torch/bf16_run.py "$MOD" --models "$MODELS" --accuracy-only --out "$OUT/accuracy.json" 2>&1 | tee -a "$LOG"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
timeout "${TIME_S:-100}" python3 bench/torch/bf16_run.py "$MOD" --models "$MODELS" --timing-only --out "$OUT/timing.json" 2>&1 | tee -a "$LOG"
echo "exit ${PIPESTATUS[0]}" | tee -a "$LOG"
