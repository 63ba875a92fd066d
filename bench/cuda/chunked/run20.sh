#!/usr/bin/env bash
# Run 20 (one call, <= 180 s): bench/cuda/chunked/run9.sh with RUN=20 on the plans of build-run20.sh (the grouped split3
# picks at (1, 32768) after the readouts' shared helpers; the delta rule's (8, 2048, 16, 64) picks beside -a512 phase A;
# GPU checks of all of them against float64; anchors at the six cases), then the grouped picks' forwards with the old
# readout text (dist/chunked-plans-run20old) and the new one again, alternating, a process each, on the same inputs.
#   device: run command="bash bench/cuda/chunked/run20.sh"
#     carry=[".device", "dist/chunked-plans-run20", "dist/chunked-plans-run20old", "dist/chunked-check-run20.mjs", ".anchors", ".whl"]
set -uo pipefail
export OUT=${OUT:-$PWD/out}
C=simple_gla:s3,gla:s3,mamba2:s3,deltanet:s1,gated_deltanet:s1,rwkv7:s1
T0=$(date +%s)
RUN=20 ROUNDS=1 MODELS='simple_gla gla mamba2 deltanet gated_deltanet rwkv7' ALL=$C SEQC_ANCHOR_CASES=$C \
  EXPECT='simple_gla:s3=split3-bf16-k128-v32-g4t gla:s3=split3-bf16-k128-v32-a512-mw-g4t mamba2:s3=split3-bf16-k64-v64-g4t
deltanet:s1=split-bf16-k64-v32-a384-iw gated_deltanet:s1=split-bf16-k64-v32-a384-iw rwkv7:s1=split-bf16-k64-v32-mw' \
  CHECK_EXTRA='split-bf16-k64-v32(-a384-iw|-a512-iw|-a384-mw|-a512-mw)' \
  B_END=55 W_END=100 K_END=95 A_END=118 C_END=124 RP_TIMEOUT=130 bash "$(dirname "$0")/run-plans.sh"
source .device/enter.sh
export SEQC_CHUNK_DIR=/dev/shm/seqc-chunk SEQC_BENCH_AUTO_ONLY=1
[ -d "$SEQC_CHUNK_DIR" ] || export SEQC_CHUNK_DIR=/tmp/seqc-chunk
echo "old vs new readout text (t=$(( $(date +%s) - T0 ))s)" | tee -a "$OUT/run.log"
for r in 1 2; do for m in simple_gla gla mamba2; do for w in old new; do
  left=$(( 172 - ($(date +%s) - T0) )); [ $left -lt 3 ] && break 3
  [ $left -gt 12 ] && left=12
  SEQC_PLANS=dist/chunked-plans-run20$([ $w = old ] && echo old) SEQC_BENCH_JSON=$OUT/ab-$m-$w-$r.json timeout $left node dist/chunked-check-run20.mjs bench $m > /tmp/ab-$m-$w-$r.log 2>&1 || echo "ab $m $w $r exited with $?" >> "$OUT/run.log"
  python3 -c "
import json,sys
d=json.load(open('$OUT/ab-$m-$w-$r.json'))
for x in d['rows']: print('ab $r $w', x['model'], x['shape'], x['variant'], x.get('ms'), x.get('parts'))
" 2>&1 | tee -a "$OUT/run.log"
done; done; done
echo "end t=$(( $(date +%s) - T0 ))s" | tee -a "$OUT/run.log"
