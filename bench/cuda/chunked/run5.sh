#!/usr/bin/env bash
# Run 5 of the chunked form (one call): the 64-value walks (split, split3) and phase A with more warps
# (-a384 / -a512 / -a768) beside the run-4 variants, and the anchors, side by side. Like run4.sh, but
#  - the checks run one process per model (run 4's single process hit its limit), restricted to the new
#    variants (every v64 walk, every phase A with more threads) plus the T = 65536 stress set (its low-rank
#    phase A now prefetches alpha v to L2);
#  - no resources files in $OUT (the tool returns at most eight files);
#  - seqc bench and anchors only at the cases that decide (the six shapes where run 4's auto was slower than the
#    anchor, GLA at the second shape and Gated DeltaNet at the third), to fit the session's device time.
#   here:   npx tsx bench/cuda/chunked/build.ts && bash bench/cuda/chunked/bundle.sh
#   device: run  command="bash bench/cuda/chunked/run5.sh"  carry=[".device", "dist/chunked-plans", "dist/chunked-check.mjs", ".anchors", ".whl"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=/tmp/triton-cache SEQC_CHECK_QUICK=1
export SEQC_CHECK_VARIANTS='-v64-|-a(384|512|768)-' SEQC_CHECK_STRESS=0
CASES="simple_gla:s2 deltanet:s2 gated_deltanet:s2 rwkv7:s2 deltanet:s3 rwkv7:s1 gla:s2 gated_deltanet:s3"
export SEQC_ANCHOR_CASES=$(echo $CASES | tr ' ' ',')
avail=$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9); [ "${avail:-0}" -lt 20 ] && export SEQC_CHUNK_DIR=/tmp/seqc-chunk
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
date +%s > /tmp/t0
el() { echo "t=$(( $(date +%s) - $(cat /tmp/t0) ))s $*" | tee -a "$LOG"; }
python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee -a "$LOG"
( for i in $(seq 0 7); do timeout 110 python3 bench/cuda/chunked/anchors.py warm $i 8 > "/tmp/warm$i.log" 2>&1 & done; wait ) &
WARM=$!
i=0; pids=()
for set in linear_attention retnet simple_gla mamba2 gla deltanet gated_deltanet rwkv7 gated_deltaproduct; do
  SEQC_CHECK_JSON=/tmp/check$i.json timeout 100 node dist/chunked-check.mjs check $set > /tmp/check$i.log 2>&1 || echo "check $set exited with $?" >> /tmp/check$i.log &
  pids+=($!); i=$((i + 1))
done
wait "${pids[@]}"
cat /tmp/check*.log > "$OUT/check.log"
python3 -c "
import json,glob
rows=[]; dev=None
for f in sorted(glob.glob('/tmp/check*.json')):
    d=json.load(open(f)); rows+=d['rows']; dev=d['device']
json.dump({'device':dev,'rows':rows}, open('$OUT/chunked-check.json','w'), indent=1)
bad=[r for r in rows if not r['ok']]
print(f'check summary: {len(rows)-len(bad)} of {len(rows)} passed')
for r in bad: print('check FAIL', r['model'], r['variant'], r['shape'], r['worst'], r.get('note',''))
worst={}
for r in rows:
    io=[x for x in ('f32','bf16','f16') if '-'+x+'-' in r['variant']][0]
    k=(r['model'],io+(' stress' if 'stress' in r['shape'] else ''))
    worst[k]=max(worst.get(k,0),r['worst'])
for k in sorted(worst): print('worst', *k, '%.2e' % worst[k])
print('stress finite:', all(r['finite'] for r in rows if 'stress' in r['shape']), sum(1 for r in rows if 'stress' in r['shape']), 'cases')
" 2>&1 | tee -a "$LOG"
grep -h "exited" /tmp/check*.log | tee -a "$LOG"
el "check done"
wait $WARM
el "warm done"
for c in $CASES; do m=${c%:*}; s=${c#*:}
  SEQC_BENCH_JSON=/tmp/bench-$m-$s.json timeout 40 node dist/chunked-check.mjs bench $m $s >> "$LOG" 2>&1 || el "bench $m $s exited with $?"
done
python3 -c "
import json,glob
rows=[]; dev=None
for f in sorted(glob.glob('/tmp/bench-*.json')):
    d=json.load(open(f)); rows+=d['rows']; dev=d['device']
json.dump({'device':dev,'rows':rows}, open('$OUT/chunked-bench.json','w'), indent=1)"
el "seqc bench done"
timeout 90 python3 bench/cuda/chunked/anchors.py time 2>&1 | tee -a "$LOG" | grep -E "ERROR|copy" | head -20
el "anchors done"
python3 bench/cuda/chunked/compare.py 2>&1 | tee -a "$LOG"
ls -la "$OUT"
