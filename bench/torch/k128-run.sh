#!/bin/bash
# One GPU call for the delta rule's bf16 training step at K = 128 (issue 6): the K = 128 kernels' switches (LR_READ_K128:
# the readouts' tensor-core twin in output-column groups, lowrank-readout-cols.ts; LR_CORE_K128: the transitions' twin at
# K = 128; with both, LR_PASS_COLS "auto") against the defaults in one process (bench/torch/k128_profile.py --sets: each case's eager GPU time per set,
# the backward's sections, gradients against the first set's; one eager step of SETS_PROFILE profiled by kernel and
# section; fla's chunk kernels beside on the same tensors), after the accuracy of the new and the old step vs seqc's
# float64 step at (1, 1024) (bench/torch/shapes_bench.py --accuracy, while workers precompile fla's Triton kernels).
# Prepared here (git-ignored): modules from a clean export of the tree with the change, its runtime files and
# bench/torch/*.py beside them (bench/torch/build-chunked.ts <dir> deltanet,gated_deltanet; cp bench/torch/*.py *.sh
# <dir>/bench/), packed as dist/<name>.tgz.
# Device: run carry=["dist/<name>.tgz", ".anchors"] command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MODULES=dist/<name> OUT=$OUT timeout 230 bash dist/<name>/bench/k128-run.sh"
# $OUT gets card.txt, accuracy.json / .log, warm.log, k128.json, k128.log, k128-profile-*.txt.
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-k128-out}
MOD=${MODULES:-dist/torch-a12b}
BENCH=${BENCH:-$MOD/bench}
CASES=${CASES:-deltanet:4x8192x16x128,deltanet:1x32768x8x128,gated_deltanet:4x8192x16x128,gated_deltanet:1x32768x8x128}
NEW=${NEW:-"--lr LR_READ_K128=on --lr LR_CORE_K128=on"}
OLD=${OLD:-"--old LR_READ_K128=off --old LR_CORE_K128=off --old LR_PASS_COLS=32"}
# the sets as call A12b ran them (LR_PASS_COLS was 32 by default then; "auto" is the default since)
SETS=${SETS:-"old:LR_READ_K128=off;LR_CORE_K128=off;LR_PASS_COLS=32,read:LR_READ_K128=on;LR_CORE_K128=off;LR_PASS_COLS=32,core:LR_READ_K128=off;LR_CORE_K128=on;LR_PASS_COLS=32,both:LR_READ_K128=on;LR_CORE_K128=on;LR_PASS_COLS=32,both-auto:LR_READ_K128=on;LR_CORE_K128=on;LR_PASS_COLS=auto"}
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt"
export PYTHONPATH=$PWD/.anchors
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1
read -r -a NEW_A <<< "$NEW"
read -r -a OLD_A <<< "$OLD"
PIDS=()
W=${WARM_WORKERS:-4}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-60}" python3 "$BENCH/shapes_bench.py" "$MOD" --cases "$CASES" --warm-fla "$i" "$W" > "/tmp/k128-warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${ACC_S:-60}" python3 "$BENCH/shapes_bench.py" "$MOD" --cases "$CASES" "${NEW_A[@]}" "${OLD_A[@]}" --accuracy "${ACC:-1x1024}" --accuracy-only --out "$OUT/accuracy.json" > "$OUT/accuracy.log" 2>&1
grep accuracy "$OUT/accuracy.log" | tail -12
el "accuracy done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/k128-warm[0-9]*.log > "$OUT/warm.log"
el "warm done"
timeout "${SETS_S:-120}" python3 "$BENCH/k128_profile.py" "$MOD" --cases "$CASES" --sets "$SETS" --profile "${PROFILE:-deltanet:4x8192x16x128}" \
  --profile-set "${SETS_PROFILE:-both}" --anchor --budget "${BUDGET:-100}" --out "$OUT" > "$OUT/k128.log" 2>&1
el "sets exit $?"
grep -v "^\[.*\]    \|Warning\|warn" "$OUT/k128.log" | tail -30
