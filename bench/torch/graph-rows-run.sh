#!/bin/bash
# One GPU call for GLA's transposed products on the rows readout kernel (issue 6; bench/torch/graph_rows.py): the runtime
# files built into the modules directory (not copied from this tree: the build's), then
#   check.py --only-chunked gla (fp32 / fp64 chunked gradients vs seqc's float64 reference, gradcheck through the chain;
#     with PER_KEY_TRANSPOSED "kernel", the default), once as built and once from a copy with ROWS_MIN_SEGMENT = 4 (so
#     its small T = 37 runs in segments too), beside the fla warm-up workers (Triton compiles of chunk_gla),
#   graph_rows.py --only accuracy (bf16 gradients vs float64, one segment and segments) at the same time,
#   then graph_rows.py --only kernel,timing alone on the GPU (the primitive per tile and segment length vs float64 and
#     its floor; the bf16 / fp32 steps with graphs, one segment vs segments (vs the fastest alone), beside fla
#     chunk_gla; a profiler table of one eager bf16 step).
# Prepared here (git-ignored; fla sources in .anchors/, the einops wheel in .whl/, never committed), from a clean export
# of the commit (the working tree may hold others' edits of runtime/torch):
#   git archive HEAD | tar -x -C /tmp/seqc-clean && ln -s $PWD/node_modules /tmp/seqc-clean/ &&
#   (cd /tmp/seqc-clean && npx tsx bench/torch/build-chunked.ts $OLDPWD/dist/torch-rows gla $OLDPWD/dist/torch-chunked-g)
# Device: run  command="timeout 155 bash bench/torch/graph-rows-run.sh"  carry=["dist/torch-rows", ".anchors", ".whl"]
# $OUT gets run.log, check.json, check.log, check-seg.json, check-seg.log, accuracy.json, rows.json, profile.txt, warm.log.
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
grep -E '^(PER_KEY_TRANSPOSED|ROWS_SEGMENT|ROWS_MIN_SEGMENT|ROWS_BLOCKS_PER_SM) = ' "$MOD/seqc_chunked.py" | tee -a "$LOG"
SEG=/tmp/mod-seg
rm -rf "$SEG" && cp -r "$MOD" "$SEG" && sed -i 's/^ROWS_MIN_SEGMENT = .*/ROWS_MIN_SEGMENT = 4/' "$SEG/seqc_chunked.py"
grep '^ROWS_MIN_SEGMENT' "$SEG/seqc_chunked.py" | sed 's/^/check-seg copy: /' | tee -a "$LOG"
PIDS=()
timeout "${CHECK_S:-60}" python3 bench/torch/check.py "$MOD" --only-chunked --out "$OUT/check.json" gla > "$OUT/check.log" 2>&1 &
PIDS+=($!)
timeout "${CHECK_S:-60}" python3 bench/torch/check.py "$SEG" --only-chunked --out "$OUT/check-seg.json" gla > "$OUT/check-seg.log" 2>&1 &
PIDS+=($!)
W=${WARM_WORKERS:-5}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-60}" python3 bench/torch/chunked_bench.py "$MOD" --models gla --warm-fla "$i" "$W" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${ACC_S:-60}" python3 bench/torch/graph_rows.py "$MOD" --only accuracy --out "$OUT/accuracy.json" 2>&1 | tail -12 | tee -a "$LOG"
el "accuracy done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
tail -8 "$OUT/check.log" | tee -a "$LOG"
echo "--- check with ROWS_MIN_SEGMENT = 4" | tee -a "$LOG"
tail -8 "$OUT/check-seg.log" | tee -a "$LOG"
el "check + warm done"
timeout "${TIME_S:-80}" python3 bench/torch/graph_rows.py "$MOD" --only kernel,timing --out "$OUT/rows.json" --profile "$OUT/profile.txt" > "$OUT/rows.log" 2>&1
el "kernel + timing exit $?"
grep -E "fastest alone|seg (1x|auto)|gla round|SUMMARY|anchor|grads vs|profile|Error|error" "$OUT/rows.log" | grep -v "decays in" | cut -c1-330 | tee -a "$LOG"
grep -E "kernel alone \[gla range\]" "$OUT/rows.log" | sed -E 's/ \(floor.*//' | awk '{print $(NF-1), $0}' | sort -n | head -12 | cut -c1-140 | tee -a "$LOG"
