#!/usr/bin/env bash
# Run 8 of the chunked form (one call, ~150 s of script): splitd (split whose record leaves out Q~ and X~ — and,
# without low rank, alpha v — and whose walk reads q and the key rows from the inputs) beside the current auto pick
# at the first two shapes of the scalar / no-decay models, every variant in one process per model, two rounds; the
# GPU checks of every splitd variant; the anchors at the three (4, 8192, 16, 128) cases of those models.
#   here:   SEQC_PLANS=dist/chunked-plans-run8 SEQC_BUILD_MODELS=simple_gla,mamba2,deltanet,gated_deltanet \
#             SEQC_BUILD_VARIANTS='^chunked-(splitd-bf16-k(64|128)-|split-bf16-k64-v32-r|split-bf16-k128-v64-(a384-)?r|split3-bf16-k64-v32-r|fused-bf16-k64-v64-r)' \
#             npx tsx bench/cuda/chunked/build.ts
#           bash bench/cuda/chunked/bundle-run8.sh
#   device: run command="bash bench/cuda/chunked/run8.sh"
#             carry=[".device", "dist/chunked-plans-run8", "dist/chunked-check-run8.mjs", ".anchors", ".whl"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=/tmp/triton-cache SEQC_CHECK_QUICK=1
export SEQC_PLANS=dist/chunked-plans-run8 SEQC_CHECK_STRESS=0 SEQC_CHECK_T=70
SEQC_CASES=simple_gla:s1,simple_gla:s2,deltanet:s1,deltanet:s2,gated_deltanet:s1,gated_deltanet:s2,mamba2:s1,mamba2:s2
ANCHOR_CASES=simple_gla:s2,gated_deltanet:s2,deltanet:s2
rm -rf "$SEQC_CHUNK_DIR" /tmp/check*.json /tmp/check*.log /tmp/bench-*.json /tmp/warm*.log
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
date +%s > /tmp/t0
now() { echo $(( $(date +%s) - $(cat /tmp/t0) )); }
el() { echo "t=$(now)s $*" | tee -a "$LOG"; }
lim() { local l=$(( $2 - $(now) )); [ $l -gt $1 ] && l=$1; [ $l -lt 1 ] && l=1; echo $l; }
# 1. inputs of the eight cases (the same seeds as runs 4-7)
SEQC_ANCHOR_CASES=$SEQC_CASES timeout 40 python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee -a "$LOG"
el "gen done"
# 2. seqc alone: every variant of the plan at each case (auto's pick = the current rules, splitd has prefer 0), a
# process per model, two rounds
for rep in 1 2; do for m in simple_gla gated_deltanet deltanet mamba2; do
  SEQC_BENCH_AUTO_ONLY=1 SEQC_BENCH_ALL=$SEQC_CASES SEQC_BENCH_JSON=/tmp/bench-$m-$rep.json timeout $(lim 25 70) node dist/chunked-check-run8.mjs bench $m >> "$LOG" 2>&1 || el "bench $m exited with $?"
done; done
el "seqc bench done"
python3 bench/cuda/chunked/run8-table.py 2>&1 | tee -a "$LOG"
# 3. the anchors' Triton precompile at their three cases, the CUDA checks of every splitd variant beside it
python3 - <<'PY'
import json, os
d = os.environ["SEQC_CHUNK_DIR"]; keep = set("simple_gla:s2,gated_deltanet:s2,deltanet:s2".split(","))
ix = json.load(open(f"{d}/index.json")); json.dump([m for m in ix if f"{m['model']}:{m['shape']}" in keep], open(f"{d}/index.json", "w"))
PY
export SEQC_ANCHOR_CASES=$ANCHOR_CASES
W=$(lim 50 120)
( for i in $(seq 0 13); do timeout $W python3 bench/cuda/chunked/anchors.py warm $i 14 > "/tmp/warm$i.log" 2>&1 & done; wait ) &
WARM=$!
i=0; pids=()
for m in simple_gla gated_deltanet deltanet mamba2; do
  SEQC_CHECK_VARIANTS='^chunked-splitd-bf16-k(64|128)-v(64|32|16)(-a384)?-r1$' SEQC_CHECK_JSON=/tmp/check$i.json timeout $(lim 50 120) node dist/chunked-check-run8.mjs check $m > /tmp/check$i.log 2>&1 || echo "check $m exited with $?" >> /tmp/check$i.log &
  pids+=($!); i=$((i + 1))
done
wait "${pids[@]}"
cat /tmp/check*.log >> "$LOG"
python3 -c "
import json,glob
rows=[]
for f in sorted(glob.glob('/tmp/check*.json')): rows+=json.load(open(f))['rows']
json.dump({'rows':rows}, open('$OUT/chunked-check.json','w'), indent=1)
bad=[r for r in rows if not r['ok']]
print(f'CUDA check summary: {len(rows)-len(bad)} of {len(rows)} passed, worst {max([r[\"worst\"] for r in rows] or [0]):.2e}')
for r in bad: print('check FAIL', r['model'], r['variant'], r['shape'], r['worst'], r.get('note',''))
" 2>&1 | tee -a "$LOG"
el "checks done"
wait $WARM
el "warm done"
# 4. the anchors alone, then the table
timeout $(lim 40 158) python3 bench/cuda/chunked/anchors.py time 2>&1 | tee -a "$LOG" | grep -E "ERROR|copy|anchor" | head -20
el "anchors done"
python3 bench/cuda/chunked/run8-table.py 2>&1 | tee -a "$LOG"
el "end"
ls -la "$OUT"
