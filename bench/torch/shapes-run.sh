#!/bin/bash
# One GPU call for issue 6 at the chunked-form issue's other two shapes (bench/torch/shapes_bench.py): every model's bf16
# fwd+bwd (eager, GPU time) beside its anchor in one process at (4, 8192, 16, 128) and (1, 32768, 8, 128) (Mamba-2 32
# heads, P = N = 64), the delta-rule family also with its K = 128 transitions / walk kernels switched off; accuracy at a
# reduced size (ACC, default 1x1024) vs seqc's float64 step while workers precompile the anchors' Triton kernels.
# Prepared here (git-ignored): modules from a clean export of the tree (git archive HEAD plus the change), its runtime
# files and bench/torch/*.py packed beside them so that the card runs that tree and not the working copy's:
#   npx tsx bench/torch/build-chunked.ts dist/torch-f2 simple_gla,gla,mamba2,deltanet,gated_deltanet,rwkv7 <cache dirs>
#   cp runtime/torch/seqc_*.py dist/torch-f2/; mkdir dist/torch-f2/bench; cp bench/torch/*.py dist/torch-f2/bench/
#   tar -C dist -czf dist/torch-f2.tgz torch-f2
# Device: run carry=["dist/torch-f2.tgz", ".anchors"] command="mkdir -p dist && tar -C dist -xzf dist/torch-f2.tgz &&
#   OUT=$OUT timeout 235 bash bench/torch/shapes-run.sh"
# $OUT gets card.txt, run.log, accuracy.json / .log, timing.json / .log, warm.log.
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-shapes-out}
MOD=${MODULES:-dist/torch-f2}
BENCH=${BENCH:-$MOD/bench}
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt" | tee -a "$LOG"
export PYTHONPATH=$PWD/.anchors
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1 | tee -a "$LOG"
CASES_ARG=()
[ -n "${CASES:-}" ] && CASES_ARG=(--cases "$CASES")
# SHAPES_ARGS: more shapes_bench.py options for the accuracy and timing runs (--lr / --old switches), word-split
read -r -a EXTRA <<< "${SHAPES_ARGS:-}"
PIDS=()
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-60}" python3 "$BENCH/shapes_bench.py" "$MOD" "${CASES_ARG[@]}" --warm-fla "$i" "$W" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${ACC_S:-60}" python3 "$BENCH/shapes_bench.py" "$MOD" "${CASES_ARG[@]}" "${EXTRA[@]}" --accuracy "${ACC:-1x1024}" --accuracy-only --out "$OUT/accuracy.json" > "$OUT/accuracy.log" 2>&1
tail -30 "$OUT/accuracy.log" | tee -a "$LOG"
el "accuracy done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
el "warm done"
timeout "${TIME_S:-160}" python3 "$BENCH/shapes_bench.py" "$MOD" "${CASES_ARG[@]}" "${EXTRA[@]}" --budget "${BUDGET:-140}" --out "$OUT/timing.json" > "$OUT/timing.log" 2>&1
el "timing exit $?"
tail -40 "$OUT/timing.log" | tee -a "$LOG"
