#!/usr/bin/env bash
# Run 4 of the chunked form (one call): the split3 variants (state-only walk + parallel readout) beside fused and
# split and the anchors. Like run.sh, with the checks restricted to split3 everywhere plus one fused and one split
# variant at K = 64 and 128 (phase A and the fused kernel changed: Aq written as an operand, late alpha v), and
# seqc's timings one process per (model, shape) with per-kernel times.
#   here:   npx tsx bench/cuda/chunked/build.ts && bash bench/cuda/chunked/bundle.sh
#   device: run  command="bash bench/cuda/chunked/run4.sh"  carry=[".device", "dist/chunked-plans", "dist/chunked-check.mjs", ".anchors", ".whl"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=/tmp/triton-cache SEQC_CHECK_QUICK=1
export SEQC_CHECK_VARIANTS='split3|fused-bf16-k(64|128)-v64|split-bf16-k(64|128)-v16'
avail=$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9); [ "${avail:-0}" -lt 20 ] && export SEQC_CHUNK_DIR=/tmp/seqc-chunk
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
date +%s > /tmp/t0
el() { echo "t=$(( $(date +%s) - $(cat /tmp/t0) ))s $*" | tee -a "$LOG"; }
python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee -a "$LOG"
( for i in $(seq 0 9); do python3 bench/cuda/chunked/anchors.py warm $i 10 > "/tmp/warm$i.log" 2>&1 & done; wait ) &
WARM=$!
timeout 170 node dist/chunked-check.mjs check >> "$LOG" 2>&1 || el "check exited with $?"
grep "^check FAIL\|^check summary\|^worst" "$LOG" | tail -60
el "check done"
wait $WARM
el "warm done"
for m in simple_gla gla deltanet gated_deltanet rwkv7 mamba2; do for s in s1 s2 s3; do
  SEQC_BENCH_JSON=/tmp/bench-$m-$s.json timeout 60 node dist/chunked-check.mjs bench $m $s >> "$LOG" 2>&1 || el "bench $m $s exited with $?"
done; done
python3 -c "
import json,glob
rows=[]; dev=None
for f in sorted(glob.glob('/tmp/bench-*.json')):
    d=json.load(open(f)); rows+=d['rows']; dev=d['device']
json.dump({'device':dev,'rows':rows}, open('$OUT/chunked-bench.json','w'), indent=1)"
grep "^bench" "$LOG" | sed -e "s/chunked-//" -e "s/  */ /g"
el "seqc bench done"
timeout 150 python3 bench/cuda/chunked/anchors.py time 2>&1 | tee -a "$LOG" | grep -E "ERROR|copy" | head -20
el "anchors done"
python3 bench/cuda/chunked/compare.py 2>&1 | tee -a "$LOG"
cp dist/chunked-plans/*.resources.txt "$OUT/" 2>/dev/null; ls -la "$OUT"
