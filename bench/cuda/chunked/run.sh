#!/usr/bin/env bash
# The device command for the chunked form (one call): inputs, Triton precompile in the background while the
# correctness checks run, then seqc's timings, the anchors' timings (alone on the GPU), the comparison.
#   here:   npx tsx bench/cuda/chunked/build.ts && bash bench/cuda/chunked/bundle.sh
#   device: run  command="bash bench/cuda/chunked/run.sh"  carry=[".device", "dist/chunked-plans", "dist/chunked-check.mjs", ".anchors", ".whl"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=/tmp/triton-cache
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
[ -f .anchors/triton-cache.tgz ] && tar -xzf .anchors/triton-cache.tgz -C "$TRITON_CACHE_DIR"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee "$OUT/nvidia-smi.txt"
python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee "$OUT/gen.log"
( for i in $(seq 0 9); do python3 bench/cuda/chunked/anchors.py warm $i 10 > "/tmp/warm$i.log" 2>&1 & done; wait ) &
WARM=$!
node dist/chunked-check.mjs check 2>&1 | tee "$OUT/check.log" | grep -v "^check ok"
wait $WARM
cat /tmp/warm*.log | sort | uniq | head -20 > "$OUT/warm.log"
node dist/chunked-check.mjs bench 2>&1 | tee "$OUT/bench.log"
python3 bench/cuda/chunked/anchors.py time 2>&1 | tee "$OUT/anchors.log"
python3 bench/cuda/chunked/compare.py 2>&1 | tee "$OUT/compare.log"
(cd "$TRITON_CACHE_DIR" && tar -czf "$OUT/triton-cache.tgz" . ) && ls -la "$OUT"
