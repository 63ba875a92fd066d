#!/bin/bash
# One GPU call for GLA's transposed products on the rows readout kernel (issue 6; bench/torch/graph_rows.py): the runtime
# files built into the modules directory (not copied from this tree: the build's), then
#   check.py --only-chunked gla (fp32 / fp64 chunked gradients vs seqc's float64 reference, gradcheck through the chain;
#     with PER_KEY_TRANSPOSED "kernel", the default) beside the fla warm-up workers (Triton compiles of chunk_gla),
#   graph_rows.py --only accuracy (bf16 gradients vs float64, both paths) at the same time,
#   then graph_rows.py --only kernel,timing alone on the GPU (the primitive per tile vs its floor; the bf16 / fp32 steps
#     with graphs, matmul vs kernel, beside fla chunk_gla).
# Prepared here (git-ignored; fla sources in .anchors/, the einops wheel in .whl/, never committed):
#   npx tsx bench/torch/build-chunked.ts dist/torch-rows gla dist/torch-chunked-g
# Device: run  command="timeout 230 bash bench/torch/graph-rows-run.sh"  carry=["dist/torch-rows", ".anchors", ".whl"]
# $OUT gets run.log, check.json, check.log, accuracy.json, rows.json, warm.log.
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-rows-out}
MOD=${MODULES:-dist/torch-rows}
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
grep -o 'PER_KEY_TRANSPOSED = "[a-z]*"' "$MOD/seqc_chunked.py" | tee -a "$LOG"
PIDS=()
timeout "${CHECK_S:-80}" python3 bench/torch/check.py "$MOD" --only-chunked --out "$OUT/check.json" gla > "$OUT/check.log" 2>&1 &
PIDS+=($!)
W=${WARM_WORKERS:-5}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-70}" python3 bench/torch/chunked_bench.py "$MOD" --models gla --warm-fla "$i" "$W" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${ACC_S:-75}" python3 bench/torch/graph_rows.py "$MOD" --only accuracy --out "$OUT/accuracy.json" 2>&1 | tail -12 | tee -a "$LOG"
el "accuracy done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
tail -25 "$OUT/check.log" | tee -a "$LOG"
el "check + warm done"
timeout "${TIME_S:-120}" python3 bench/torch/graph_rows.py "$MOD" --only kernel,timing --out "$OUT/rows.json" 2>&1 | tee -a "$LOG"
el "kernel + timing exit ${PIPESTATUS[0]}"
