#!/usr/bin/env bash
# The device command for the chunked form (one call): inputs, Triton precompile in the background while the
# correctness checks run, then seqc's timings, the anchors' timings (alone on the GPU), the comparison.
#   here:   npx tsx bench/cuda/chunked/build.ts && bash bench/cuda/chunked/bundle.sh
#   device: run  command="bash bench/cuda/chunked/run.sh"  carry=[".device", "dist/chunked-plans", "dist/chunked-check.mjs", ".anchors", ".whl"]
# $OUT gets run.log, chunked-check.json, chunked-bench.json, anchors.json, chunked-summary.json, warm.log, triton-cache.tgz.
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=/tmp/triton-cache
avail=$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9); [ "${avail:-0}" -lt 20 ] && export SEQC_CHUNK_DIR=/tmp/seqc-chunk
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
[ -f .anchors/triton-cache.tgz ] && tar -xzf .anchors/triton-cache.tgz -C "$TRITON_CACHE_DIR"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
date +%s > /tmp/t0
python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee -a "$LOG"
( for i in $(seq 0 9); do python3 bench/cuda/chunked/anchors.py warm $i 10 > "/tmp/warm$i.log" 2>&1 & done; wait ) &
WARM=$!
node dist/chunked-check.mjs check >> "$LOG" 2>&1
grep -v "^check ok" "$LOG" | grep "^check\|^worst" | tail -60
echo "t=$(( $(date +%s) - $(cat /tmp/t0) ))s check done" | tee -a "$LOG"
wait $WARM
cat /tmp/warm*.log | sort | uniq -c | sort -rn | head -40 > "$OUT/warm.log"
echo "t=$(( $(date +%s) - $(cat /tmp/t0) ))s warm done" | tee -a "$LOG"
node dist/chunked-check.mjs bench 2>&1 | tee -a "$LOG" | grep -E "ERROR" | head
echo "t=$(( $(date +%s) - $(cat /tmp/t0) ))s seqc bench done" | tee -a "$LOG"
python3 bench/cuda/chunked/anchors.py time 2>&1 | tee -a "$LOG" | grep -E "ERROR|copy" | head -20
echo "t=$(( $(date +%s) - $(cat /tmp/t0) ))s anchors done" | tee -a "$LOG"
python3 bench/cuda/chunked/compare.py 2>&1 | tee -a "$LOG"
(cd "$TRITON_CACHE_DIR" && tar -czf "$OUT/triton-cache.tgz" . ) ; ls -la "$OUT"
