#!/usr/bin/env bash
# Run 9 of the chunked form (one call): auto's pick at all 18 (model, shape) cases beside the anchors, as run 7
# with auto's picks after run 8 (splitd), every variant at the two cases that were slower in run 7 (Simple GLA and
# Gated DeltaNet at (4, 8192, 16, 128)), and the GPU checks of the picks. Ordered so that nothing else runs while seqc
# or the anchors are timed: inputs; seqc's bf16 bench alone; the anchors' Triton precompile with the CUDA checks
# beside it (CPU, and GPU work that is not timed); the anchors alone; the comparison.
# RUN names the plans and the bundle (default 9; run 12 is this script with RUN=12 on plans built after run 11).
# Run 13b sets the rest: MODELS (the models benched and checked, default all six), EXPECT (auto's picks), ALL (the
# cases timed with every variant), ROUNDS (seqc rounds, default 1), SEQC_ANCHOR_CASES (anchors.py's cases, default all)
# CHECK_EXTRA (run 14: more variants to check, an alternative of the variant pattern, default none), SEQC_CHECK_T (run
# 16: the checks' sequence length, default 70), REVERSE_EVEN (run 29: 1 times even rounds in reverse plan order) and the steps'
# deadlines in seconds from the start: B_END (seqc bench, 125), W_END (Triton precompile, 245), K_END
# (checks, 240), A_END (anchors, 335), C_END (comparison, 355).
#   here:   SEQC_PLANS=dist/chunked-plans-run$RUN SEQC_BUILD_MODELS=simple_gla,gla,deltanet,gated_deltanet,rwkv7,mamba2 \
#             SEQC_BUILD_VARIANTS='-bf16-k64-|split3-bf16-k128-|split-bf16-k128-v64-' npx tsx bench/cuda/chunked/build.ts
#           RUN=$RUN bash bench/cuda/chunked/bundle-run9.sh
#   device: run command="RUN=$RUN bash bench/cuda/chunked/run9.sh"
#             carry=[".device", "dist/chunked-plans-run$RUN", "dist/chunked-check-run$RUN.mjs", ".anchors", ".whl"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=/tmp/triton-cache SEQC_CHECK_QUICK=1
RUN=${RUN:-9}
export SEQC_PLANS=dist/chunked-plans-run$RUN SEQC_CHECK_STRESS=0 SEQC_CHECK_T=${SEQC_CHECK_T:-70}
# auto's picks at the benchmark shapes (test/cuda-chunked.test.ts), model:shape=variant
EXPECT=${EXPECT:-"simple_gla:s1=splitd-bf16-k64-v32 simple_gla:s2=split-bf16-k128-v64 simple_gla:s3=split3-bf16-k128-v16
gla:s1=split-bf16-k64-v32 gla:s2=split-bf16-k128-v64-a512 gla:s3=split3-bf16-k128-v16-a512
deltanet:s1=split-bf16-k64-v32 deltanet:s2=split-bf16-k128-v64-a384 deltanet:s3=split3-bf16-k128-v8-a384
gated_deltanet:s1=split-bf16-k64-v32 gated_deltanet:s2=split-bf16-k128-v64-a384 gated_deltanet:s3=split3-bf16-k128-v8-a384
rwkv7:s1=split-bf16-k64-v32 rwkv7:s2=split-bf16-k128-v64-a512 rwkv7:s3=split3-bf16-k128-v8-a512
mamba2:s1=fused-bf16-k64-v64 mamba2:s2=splitd-bf16-k64-v32 mamba2:s3=split3-bf16-k64-v16"}
# the cases timed with every variant the plan has
ALL=${ALL:-simple_gla:s2,gated_deltanet:s2}
MODELS=${MODELS:-simple_gla gla deltanet gated_deltanet rwkv7 mamba2}
ROUNDS=${ROUNDS:-1}
B_END=${B_END:-125} W_END=${W_END:-245} K_END=${K_END:-240} A_END=${A_END:-335} C_END=${C_END:-355}
# the variants checked for model $1: auto's picks, split3's 8-value walks at K = 128, RWKV-7's K = 64 variants (its
# phase A now fits two blocks per SM)
picks() {
  local p=$(for e in $EXPECT; do [ "${e%%:*}" = "$1" ] && echo ${e#*=}; done | sort -u | paste -sd'|')
  echo "^chunked-($p|split3-bf16-k128-v8(-a[0-9]+)?$( [ "$1" = rwkv7 ] && echo '|(fused|split|split3)-bf16-k64-v(64|32)(-a384)?')${CHECK_EXTRA:+|$CHECK_EXTRA})-r[12]\$"
}
avail=$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9); [ "${avail:-0}" -lt 20 ] && export SEQC_CHUNK_DIR=/tmp/seqc-chunk
# a warm machine may hold an earlier run's files under the same names
rm -rf "$SEQC_CHUNK_DIR" /tmp/check*.json /tmp/check*.log /tmp/bench-*.json /tmp/warm*.log
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
for m in $MODELS; do echo "check $m: $(picks $m)"; done | tee -a "$LOG"
date +%s > /tmp/t0
now() { echo $(( $(date +%s) - $(cat /tmp/t0) )); }
el() { echo "t=$(now)s $*" | tee -a "$LOG"; }
# a step's time limit: at most $1 s, and none past $2 s since t0 (the call must end within the session's allowance)
lim() { local l=$(( $2 - $(now) )); [ $l -gt $1 ] && l=$1; [ $l -lt 1 ] && l=1; echo $l; }
# 1. inputs (the same seeds as runs 4-6)
timeout 45 python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee -a "$LOG"
el "gen done"
# 2. seqc bf16 alone: auto's pick per case (every variant at $ALL), a process per model
for r in $(seq 1 $ROUNDS); do for m in deltanet rwkv7 gated_deltanet simple_gla gla mamba2; do
  [[ " $MODELS " == *" $m "* ]] || continue
  SEQC_BENCH_REVERSE=$([ "${REVERSE_EVEN:-0}" = 1 ] && [ $((r % 2)) = 0 ] && echo 1 || echo 0) \
  SEQC_BENCH_AUTO_ONLY=1 SEQC_BENCH_ALL=$ALL SEQC_BENCH_JSON=/tmp/bench-$m-$r.json timeout $(lim 30 $B_END) node dist/chunked-check-run$RUN.mjs bench $m >> "$LOG" 2>&1 || el "bench $m exited with $?"
done; done
python3 -c "
import json,glob
rows=[]; dev=None
for f in sorted(glob.glob('/tmp/bench-*.json')):
    d=json.load(open(f)); rows+=[dict(r, round=int(f.split('-')[-1][:-5])) for r in d['rows']]; dev=d['device']
json.dump({'device':dev,'rows':rows}, open('$OUT/chunked-bench.json','w'), indent=1)
if not rows: print('ERROR: no seqc bench row (see the log above)')
exp=dict(e.split('=') for e in '''$EXPECT'''.split())
got={f\"{r['model']}:{r['shape']}\": r['variant'] for r in rows if r.get('auto')}
same=[k for k in exp if got.get(k,'').startswith('chunked-'+exp[k]+'-r')]
print(f'auto picks as expected: {len(same)} of {len(exp)}')
for k in exp:
    if k not in same: print('auto pick differs', k, 'expected', exp[k], 'got', got.get(k))
" 2>&1 | tee -a "$LOG"
el "seqc bench done"
# 3. the anchors' Triton precompile (CPU; each worker launches one T = 512 kernel per config) with the CUDA checks
# beside it (a process per model)
W=$(lim 110 $W_END)
( for i in $(seq 0 12); do timeout $W python3 bench/cuda/chunked/anchors.py warm $i 13 > "/tmp/warm$i.log" 2>&1 & done; wait ) &
WARM=$!
i=0; pids=()
for m in $MODELS; do
  SEQC_CHECK_VARIANTS="$(picks $m)" SEQC_CHECK_JSON=/tmp/check$i.json timeout $(lim 95 $K_END) node dist/chunked-check-run$RUN.mjs check $m > /tmp/check$i.log 2>&1 || echo "check $m exited with $?" >> /tmp/check$i.log &
  pids+=($!); i=$((i + 1))
done
wait "${pids[@]}"
cat /tmp/check*.log >> "$LOG"
python3 bench/cuda/chunked/collect.py checks "$OUT" 2>&1 | tee -a "$LOG"
el "checks done"
wait $WARM
el "warm done"
# 4. the anchors, alone on the GPU, then the comparison
timeout $(lim 100 $A_END) python3 bench/cuda/chunked/anchors.py time 2>&1 | tee -a "$LOG" | grep -E "ERROR|copy" | head -20
el "anchors done"
timeout $(lim 25 $C_END) python3 bench/cuda/chunked/compare.py 2>&1 | tee -a "$LOG"
el "end"
ls -la "$OUT"
