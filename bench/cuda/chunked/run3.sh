#!/usr/bin/env bash
# seqc's timings alone (no checks, no anchors; anchors.json of run.sh carried in .anchors/): inputs, then one
# process per (model, shape) so that a crash loses one case, then the comparison.
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1
avail=$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9); [ "${avail:-0}" -lt 20 ] && export SEQC_CHUNK_DIR=/tmp/seqc-chunk
mkdir -p "$OUT"
LOG="$OUT/run.log"
cp .anchors/anchors.json "$OUT/anchors.json" 2>/dev/null
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
python3 bench/cuda/chunked/anchors.py gen >> "$LOG" 2>&1
for m in simple_gla gla deltanet gated_deltanet rwkv7 mamba2; do for s in s1 s2 s3; do
  SEQC_BENCH_JSON=/tmp/bench-$m-$s.json node dist/chunked-check.mjs bench $m $s >> "$LOG" 2>&1 || echo "bench $m $s exited with $?" | tee -a "$LOG"
done; done
python3 -c "
import json,glob
rows=[]; dev=None
for f in sorted(glob.glob('/tmp/bench-*.json')):
    d=json.load(open(f)); rows+=d['rows']; dev=d['device']
json.dump({'device':dev,'rows':rows}, open('$OUT/chunked-bench.json','w'), indent=1)"
grep "^bench" "$LOG" | sed -e "s/chunked-//" -e "s/  */ /g"
python3 bench/cuda/chunked/compare.py 2>&1 | tee -a "$LOG"
