#!/usr/bin/env bash
# Run 28 (one call on the H200, <= 170 s): Simple GLA at (4, 8192, 16, 128) only (issue 5's miss in run 27): auto's
# split-v64 and every other variant of build-run28.sh's plan, two seqc rounds, a process per round, seqc alone on the
# GPU; GPU checks of all of them against float64 (B = 2, T = 70, initial state) beside fla's Triton precompile; then fla
# chunk_simple_gla alone at that case, and compare.py. $OUT keeps run.log, the JSON files and run28.txt (every variant's
# rounds and parts, then floor, anchor, auto's rounds, anchor / seqc).
#   here:   bash bench/cuda/chunked/build-run28.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run28.sh" timeout_s=170
#     carry=[".device", "dist/chunked-plans-run28", "dist/chunked-check-run28.mjs", ".anchors", ".whl"]
set -uo pipefail
export OUT=${OUT:-$PWD/out} RUN=${RUN:-28}
ROUNDS=${ROUNDS:-2} MODELS=simple_gla ALL=simple_gla:s2 SEQC_ANCHOR_CASES=simple_gla:s2 \
  CHECK_EXTRA='split-bf16-k128-v(64|32)(-w512)?|split-bf16-k128-v16|splitd-bf16-k128-v(64|32)|split3-bf16-k128-v(64|32)(-g2t)?|split3-bf16-k128-v32-g4t|fused-bf16-k128-v(64|32)' \
  EXPECT='simple_gla:s2=split-bf16-k128-v64' \
  B_END=60 W_END=105 K_END=100 A_END=135 C_END=145 timeout 150 bash bench/cuda/chunked/run9.sh > /tmp/run$RUN.out 2>&1
echo "run9.sh exit $?"
grep -E "auto pick|checks|ERROR|exited|t=[0-9]+s" /tmp/run$RUN.out | tail -30
python3 - "$OUT" <<'PY' 2>&1 | tee "$OUT/run28.txt"
import json, sys, os, collections
out = sys.argv[1]
d = json.load(open(out + '/chunked-bench.json'))
s = json.load(open(out + '/chunked-summary.json')) if os.path.exists(out + '/chunked-summary.json') else {'rows': []}
t = collections.defaultdict(dict)
for r in d['rows']:
    if r.get('ms') == r.get('ms') and r.get('ms') is not None:
        t[(r['model'], r['shape'])].setdefault(r['variant'], {})[r['round']] = (r['ms'], r.get('auto', False), r.get('parts') or [])
print('device', d.get('device'), 'copy GB/s', s.get('copy_gbps'))
print('every variant timed (round: ms [parts]):')
for (m, sh), vs in sorted(t.items()):
    for v, by in sorted(vs.items()):
        print(f"  {m:15s} {sh} {v:44s} " + '  '.join(f"r{k} {by[k][0]:.3f}{'*' if by[k][1] else ''} [" + ', '.join(f'{p:.3f}' for p in by[k][2]) + ']' for k in sorted(by)))
print(f"\n{'model':15s} {'sh':3s} {'floor':>6s} {'anchor':>7s} {'xfl':>5s} {'seqc r1':>8s} {'seqc r2':>8s} {'anc/seqc':>8s}  auto pick   (err seqc / anchor on the slice)")
for r in s['rows']:
    vs = t.get((r['model'], r['shape']), {})
    auto = [(v, by) for v, by in vs.items() if any(x[1] for x in by.values())]
    ms = [x[0] for v, by in auto for x in by.values() if x[1]]
    mean = sum(ms) / len(ms) if ms else None
    a, fl = r.get('anchor_ms'), r['floor_ms']
    f = lambda x, n=3: f"{x:.{n}f}" if isinstance(x, (int, float)) else '-'
    rr = [x[0] for v, by in auto for k, x in sorted(by.items()) if x[1]]
    print(f"{r['model']:15s} {r['shape']:3s} {f(fl)} {f(a):>7s} {f(a / fl if a else None, 1):>5s} {f(rr[0] if rr else None):>8s} {f(rr[1] if len(rr) > 1 else None):>8s} {f(a / mean if a and mean else None, 2):>8s}  {auto[0][0] if auto else '-'}  ({r.get('seqc_err_slice', '-')!s:.8} / {r.get('anchor_err_slice', '-')!s:.8})")
PY
ls -la "$OUT"
