#!/bin/bash
# One GPU call for the transposed cores' mixed-I/O variants (issue 6; bench/torch/mixed_bench.py): the runtime files of
# this tree copied next to the modules, then mixed_bench.py --accuracy-only (bf16 gradients vs seqc's float64 kernels,
# paths "f32", "mixed" (the decay adjoint summed over the sequence) and "mixed+aC" (anchored every C tokens:
# runtime/torch/seqc_decay_adjoint.py), limit 1e-2) while workers precompile the anchors' Triton kernels, then the
# anchors' own cost per C and the timing (bf16 with CUDA graphs, the paths side by side, and fla / mamba_ssm at
# (8, 2048, 16, 64)).
# Prepared here (git-ignored; fla / mamba_ssm sources in .anchors/, the einops wheel in .whl/, never committed):
#   npx tsx bench/torch/build-chunked.ts dist/torch-mixed simple_gla,mamba2 dist/torch-chunked-g
# Device: run  command="timeout 190 bash bench/torch/mixed-run.sh"  carry=["dist/torch-mixed", ".anchors", ".whl"]
# ACC_PATHS / TIME_PATHS (mixed_bench.py PATHS, comma-separated) choose the paths checked / timed.
# $OUT gets run.log, accuracy.json, accuracy.log, timing.json, warm.log.
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-mixed-out}
MOD=${MODULES:-dist/torch-mixed}
MODELS=${MODELS:-simple_gla,mamba2}
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
cp runtime/torch/seqc_*.py "$MOD"/
PIDS=()
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-50}" python3 bench/torch/chunked_bench.py "$MOD" --models "$MODELS" --warm-fla "$i" "$W" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${ACC_S:-70}" python3 bench/torch/mixed_bench.py "$MOD" --models "$MODELS" --accuracy-only --out "$OUT/accuracy.json" > "$OUT/accuracy.log" 2>&1; tail -45 "$OUT/accuracy.log" | tee -a "$LOG"
el "accuracy done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
el "warm done"
timeout "${TIME_S:-105}" python3 bench/torch/mixed_bench.py "$MOD" --models "$MODELS" --timing-only --out "$OUT/timing.json" 2>&1 | tee -a "$LOG"
el "timing exit ${PIPESTATUS[0]}"
