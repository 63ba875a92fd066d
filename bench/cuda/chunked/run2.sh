#!/usr/bin/env bash
# Shorter device command for a re-run of seqc alone (the anchors' numbers come from an earlier run.sh, whose
# anchors.json is carried in .anchors/): correctness checks in four processes beside the input generation,
# then seqc's timings alone on the GPU, then the comparison.
#   device: run  command="bash bench/cuda/chunked/run2.sh"  carry=[".device", "dist/chunked-plans", "dist/chunked-check.mjs", ".anchors", ".whl"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1 SEQC_CHECK_QUICK=1
avail=$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9); [ "${avail:-0}" -lt 20 ] && export SEQC_CHUNK_DIR=/tmp/seqc-chunk
mkdir -p "$OUT"
LOG="$OUT/run.log"
export PYTHONPATH=$PWD/.anchors
cp .anchors/anchors.json "$OUT/anchors.json" 2>/dev/null
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
date +%s > /tmp/t0
python3 bench/cuda/chunked/anchors.py gen >> "$LOG" 2>&1 &
GEN=$!
i=0
for set in linear_attention,retnet,simple_gla,deltanet gla,mamba2 gated_deltanet,rwkv7 gated_deltaproduct; do
  SEQC_CHECK_JSON=/tmp/check$i.json node dist/chunked-check.mjs check $set > /tmp/check$i.log 2>&1 &
  i=$((i + 1))
done
wait
cat /tmp/check*.log >> "$LOG"
grep -h "^check FAIL\|^worst" /tmp/check*.log | sort | tail -70
python3 -c "
import json,glob
rows=[]; dev=None
for f in sorted(glob.glob('/tmp/check*.json')):
    d=json.load(open(f)); rows+=d['rows']; dev=d['device']
json.dump({'device':dev,'rows':rows}, open('$OUT/chunked-check.json','w'), indent=1)
print('check summary:', sum(r['ok'] for r in rows), 'of', len(rows), 'passed')"
echo "t=$(( $(date +%s) - $(cat /tmp/t0) ))s check done" | tee -a "$LOG"
node dist/chunked-check.mjs bench 2>&1 | tee -a "$LOG" | grep -E "ERROR" | head
echo "t=$(( $(date +%s) - $(cat /tmp/t0) ))s seqc bench done" | tee -a "$LOG"
python3 bench/cuda/chunked/compare.py 2>&1 | tee -a "$LOG"
grep "^bench" "$LOG" | awk '{print $2, $3, $4, $5, $6, $7, $8, $9}' | sort | tail -0
ls -la "$OUT"
