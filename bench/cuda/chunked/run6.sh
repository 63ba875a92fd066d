#!/usr/bin/env bash
# Run 6 of the chunked form (one call, ~260 s; about 5.5 min of device time with the start): auto's pick (the rules of 3bdebd3) timed at all 18 (model, shape)
# cases beside the anchors, and the WGSL chunked form at the same shapes in the same call. Like run5.sh, but
#  - the checks only of the variants auto picks at the benchmark shapes (bf16, K = V = 64 and 128, T = 70, B = 2,
#    initial state; a process per model), no stress set; auto's picks compared with the expected list;
#  - seqc bench only auto's pick per case (SEQC_BENCH_AUTO_ONLY), every variant at the two cases still slower
#    than the anchor in run 5 (DeltaNet s3, RWKV-7 s1);
#  - while the anchors' Triton configs precompile (CPU; each worker launches one T = 512 kernel per config),
#    the WGSL checks of its picks and the WGSL bench (auto's chunked pick, no phase-A-alone times), then seqc's
#    CUDA fp32 chunked variants at the same shapes; seqc's bf16 bench and the anchors run after that, alone.
#   here:   SEQC_PLANS=dist/chunked-plans-run6 SEQC_BUILD_MODELS=simple_gla,gla,deltanet,gated_deltanet,rwkv7,mamba2 \
#             SEQC_BUILD_VARIANTS='-bf16-k(64|128)-' npx tsx bench/cuda/chunked/build.ts
#           SEQC_PLANS=dist/chunked-f32-plans-run6 npx tsx bench/cuda/chunked/build-f32.ts
#           bash bench/cuda/chunked/bundle-run6.sh
#   device: run command="bash bench/cuda/chunked/run6.sh"  carry=[".device", "dist/chunked-plans-run6",
#             "dist/chunked-check-run6.mjs", "dist/chunked-f32-plans-run6", "dist/chunked-f32-run6.mjs",
#             "dist/bench-chunked-run6.js", ".anchors", ".whl"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=/tmp/triton-cache SEQC_CHECK_QUICK=1
export SEQC_PLANS=dist/chunked-plans-run6 SEQC_CHECK_STRESS=0 SEQC_CHECK_T=70
# auto's picks at the benchmark shapes (test/cuda-chunked.test.ts), model:shape=variant
EXPECT="simple_gla:s1=split3-bf16-k64-v32 simple_gla:s2=split-bf16-k128-v64 simple_gla:s3=split3-bf16-k128-v16
gla:s1=split-bf16-k64-v32 gla:s2=split-bf16-k128-v64-a512 gla:s3=split3-bf16-k128-v16-a512
deltanet:s1=split-bf16-k64-v32 deltanet:s2=split-bf16-k128-v64-a384 deltanet:s3=split3-bf16-k128-v16-a384
gated_deltanet:s1=split-bf16-k64-v32 gated_deltanet:s2=split-bf16-k128-v64-a384 gated_deltanet:s3=split3-bf16-k128-v16-a384
rwkv7:s1=fused-bf16-k64-v64 rwkv7:s2=split-bf16-k128-v64-a512 rwkv7:s3=split3-bf16-k128-v16-a512
mamba2:s1=fused-bf16-k64-v64 mamba2:s2=split3-bf16-k64-v32 mamba2:s3=split3-bf16-k64-v16"
# the variants auto picks for model $1 at the three shapes, as a regular expression
picks() { echo "^chunked-($(for e in $EXPECT; do [ "${e%%:*}" = "$1" ] && echo ${e#*=}; done | sort -u | paste -sd'|'))-r[12]\$"; }
avail=$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9); [ "${avail:-0}" -lt 20 ] && export SEQC_CHUNK_DIR=/tmp/seqc-chunk
# a warm machine may hold an earlier run's files under the same names
rm -rf "$SEQC_CHUNK_DIR" /tmp/wgsl /tmp/wgsl-check /tmp/check*.json /tmp/check*.log /tmp/bench-*.json /tmp/warm*.log
mkdir -p "$OUT" "$TRITON_CACHE_DIR" /tmp/wgsl
LOG="$OUT/run.log"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
for m in simple_gla gla deltanet gated_deltanet rwkv7 mamba2; do echo "check $m: $(picks $m)"; done | tee -a "$LOG"
date +%s > /tmp/t0
now() { echo $(( $(date +%s) - $(cat /tmp/t0) )); }
el() { echo "t=$(now)s $*" | tee -a "$LOG"; }
# a step's time limit: at most $1 s, and none past $2 s since t0 (the call must end within the session's allowance)
lim() { local l=$(( $2 - $(now) )); [ $l -gt $1 ] && l=$1; [ $l -lt 1 ] && l=1; echo $l; }
# 1. (nothing timed) Triton precompile, inputs, the CUDA checks (a process per model), the WGSL checks
# (run 6: 12 workers for 62 s left configs uncompiled; the anchors then compiled inline and reached 12 of 18 cases by
# their limit; run 5 needed up to 95 s for 8 of the 16 (model, H, K) combinations)
( for i in $(seq 0 13); do timeout 115 python3 bench/cuda/chunked/anchors.py warm $i 14 > "/tmp/warm$i.log" 2>&1 & done; wait ) &
WARM=$!
i=0; pids=()
for m in simple_gla gla deltanet gated_deltanet rwkv7 mamba2; do
  SEQC_CHECK_VARIANTS="$(picks $m)" SEQC_CHECK_JSON=/tmp/check$i.json timeout 60 node dist/chunked-check-run6.mjs check $m > /tmp/check$i.log 2>&1 || echo "check $m exited with $?" >> /tmp/check$i.log &
  pids+=($!); i=$((i + 1))
done
timeout 100 node dist/bench-chunked-run6.js --out /tmp/wgsl-check --check-picks --skip-bench > /tmp/wgsl-check.log 2>&1 || echo "wgsl check exited with $?" >> /tmp/wgsl-check.log &
pids+=($!)
python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee -a "$LOG"
el "gen done"
wait "${pids[@]}"
cat /tmp/check*.log /tmp/wgsl-check.log >> "$LOG"
cp /tmp/wgsl-check/chunked-check.json "$OUT/wgsl-chunked-check.json" 2>/dev/null
python3 -c "
import json,glob
rows=[]; dev=None
for f in sorted(glob.glob('/tmp/check*.json')):
    d=json.load(open(f)); rows+=d['rows']; dev=d['device']
json.dump({'device':dev,'rows':rows}, open('$OUT/chunked-check.json','w'), indent=1)
bad=[r for r in rows if not r['ok']]
print(f'CUDA check summary: {len(rows)-len(bad)} of {len(rows)} passed, worst {max([r[\"worst\"] for r in rows] or [0]):.2e}')
if not rows: print('ERROR: no CUDA check ran (see the check logs above)')
for r in bad: print('check FAIL', r['model'], r['variant'], r['shape'], r['worst'], r.get('note',''))
" 2>&1 | tee -a "$LOG"
grep -h "check summary\|FAIL\|exited" /tmp/wgsl-check.log | sed 's/^/WGSL /' | tee -a "$LOG"
grep -h "exited" /tmp/check*.log | tee -a "$LOG"
el "checks done"
# 2. WGSL bench and CUDA fp32 (the precompile may still run beside them)
timeout $(lim 45 150) node dist/bench-chunked-run6.js --out /tmp/wgsl --skip-check --auto-only --no-parts --budget 70 >> "$LOG" 2>&1 || el "wgsl bench exited with $?"
cp /tmp/wgsl/chunked-bench.json "$OUT/wgsl-chunked-bench.json" 2>/dev/null
el "wgsl bench done"
[ $(now) -lt 140 ] && SEQC_PLANS=dist/chunked-f32-plans-run6 timeout $(lim 40 160) node dist/chunked-f32-run6.mjs --out "$OUT" --pool >> "$LOG" 2>&1 || el "cuda f32 exited with $?"
el "cuda f32 done"
wait $WARM
el "warm done"
# 3. seqc bf16, auto's pick (every variant at the two cases slower than the anchor in run 5), a process per model
for m in simple_gla gla deltanet gated_deltanet rwkv7 mamba2; do
  SEQC_BENCH_AUTO_ONLY=1 SEQC_BENCH_ALL=deltanet:s3,rwkv7:s1 SEQC_BENCH_JSON=/tmp/bench-$m.json timeout $(lim 25 185) node dist/chunked-check-run6.mjs bench $m >> "$LOG" 2>&1 || el "bench $m exited with $?"
done
python3 -c "
import json,glob
rows=[]; dev=None
for f in sorted(glob.glob('/tmp/bench-*.json')):
    d=json.load(open(f)); rows+=d['rows']; dev=d['device']
json.dump({'device':dev,'rows':rows}, open('$OUT/chunked-bench.json','w'), indent=1)
exp=dict(e.split('=') for e in '''$EXPECT'''.split())
got={f\"{r['model']}:{r['shape']}\": r['variant'] for r in rows if r.get('auto')}
same=[k for k in exp if got.get(k,'').startswith('chunked-'+exp[k]+'-r')]
print(f'auto picks as expected: {len(same)} of {len(exp)}')
for k in exp:
    if k not in same: print('auto pick differs', k, 'expected', exp[k], 'got', got.get(k))
" 2>&1 | tee -a "$LOG"
el "seqc bench done"
# 4. the anchors, alone on the GPU, then the comparison
timeout $(lim 100 280) python3 bench/cuda/chunked/anchors.py time 2>&1 | tee -a "$LOG" | grep -E "ERROR|copy" | head -20
el "anchors done"
timeout $(lim 25 305) python3 bench/cuda/chunked/compare.py 2>&1 | tee -a "$LOG"
python3 bench/cuda/chunked/wgsl-ratio.py 2>&1 | tee -a "$LOG"
el "end"
ls -la "$OUT"
