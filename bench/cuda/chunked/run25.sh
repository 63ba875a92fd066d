#!/usr/bin/env bash
# Run 25 (one call, <= 190 s): DeltaNet and Gated DeltaNet at (4, 8192, 16, 128): split's 64-value 512-thread walk after
# phase A on 384 threads (run 23b's pick), on 512 threads (auto's, -a512-iw-w512) and the walk that forms Q~ S0 beside Z
# (-a512-iw-wq-w512): bench/cuda/chunked/run9.sh with RUN=25, two rounds, every variant of build-run25.sh's plans
# (phase A and walk also timed alone), a process per model and round, seqc alone on the GPU; GPU checks of all three
# against float64 (B = 2, T = 70, initial state); then fla's chunk_delta_rule and chunk_gated_delta_rule alone at the
# two cases. $OUT keeps run.log, the JSON files and run25.txt (a line per variant: forward ms per round [phase A, walk]).
#   here:   bash bench/cuda/chunked/build-run25.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run25.sh" timeout_s=200
#     carry=[".device", "dist/chunked-plans-run25", "dist/chunked-check-run25.mjs", ".anchors", ".whl"]
set -uo pipefail
export OUT=${OUT:-$PWD/out}
C=deltanet:s2,gated_deltanet:s2
RUN=${RUN:-25} ROUNDS=${ROUNDS:-2} MODELS='deltanet gated_deltanet' ALL=$C SEQC_ANCHOR_CASES=$C \
  EXPECT='deltanet:s2=split-bf16-k128-v64-a512-iw-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-w512' \
  CHECK_EXTRA='split-bf16-k128-v64-a(384|512)-iw(-wq)?-w512' \
  B_END=75 W_END=125 K_END=120 A_END=170 C_END=180 timeout 186 bash bench/cuda/chunked/run9.sh > /tmp/run25.out 2>&1
echo "run9.sh exit $?"
tail -30 /tmp/run25.out
python3 - "$OUT" <<'PY' 2>&1 | tee "$OUT/run25.txt"
import json, sys, collections
d = json.load(open(sys.argv[1] + '/chunked-bench.json'))
t = collections.defaultdict(dict)
for r in d['rows']:
    if r.get('ms') is not None: t[(r['model'], r['variant'])][r['round']] = (r['ms'], r.get('parts') or [])
print('device', d.get('device'))
for (m, v), by in sorted(t.items()):
    print(f"{m:15s} {v:48s} " + '  '.join(f"r{k} {by[k][0]:.3f} [" + ', '.join(f'{p:.3f}' for p in by[k][1]) + ']' for k in sorted(by)))
PY
ls -la "$OUT"
