#!/usr/bin/env bash
# Run 29b (one call on the H200, <= 200 s): run 29 again in a second lease for Simple GLA (4, 8192, 16, 128), auto's
# split-v64-vi-w512 (9f4b7f1) beside the pick before it (split-v64-w512), and Gated DeltaNet there: auto's
# split-v64-a512-iw-ios-w512 beside the untimed forms of build-run29b.sh's plan (splitd after -a512-iw, split3 after
# -a512-iw-ios, split's 256-thread walk, the -a384 -iw-ios phase A); DeltaNet's auto pick alone (the gate's cost per
# kernel, same call; no anchor). Three seqc rounds, a process per model and round, the second in reverse plan order;
# GPU checks of every variant against float64 (B = 2, T = 70, initial state) beside fla's Triton precompile; then fla
# chunk_simple_gla and chunk_gated_delta_rule alone, and compare.py. $OUT keeps run.log, the JSON files and run29b.txt.
#   here:   bash bench/cuda/chunked/build-run29b.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run29b.sh" timeout_s=200
#     carry=[".device", "dist/chunked-plans-run29b", "dist/chunked-check-run29b.mjs", ".anchors", ".whl"]
# The inputs come from anchors.py gen, restricted to SEQC_ANCHOR_CASES: DeltaNet is checked but not timed (run 29b).
# Next call (the -gf phase A, built as build-run29b.sh's header says): run command="source .device/enter.sh && RUN=29c
#   CHECK29='split-bf16-k128-v64(-vi)?-w512|split-bf16-k128-v64-a512-iw-ios(-gf)?-w512' bash bench/cuda/chunked/run29b.sh"
#   carry=[".device", "dist/chunked-plans-run29c", "dist/chunked-check-run29c.mjs", ".anchors", ".whl"]
set -uo pipefail
export OUT=${OUT:-$PWD/out} RUN=${RUN:-29b}
ROUNDS=${ROUNDS:-3} REVERSE_EVEN=1 MODELS="simple_gla gated_deltanet deltanet" ALL=simple_gla:s2,gated_deltanet:s2 SEQC_ANCHOR_CASES=simple_gla:s2,gated_deltanet:s2 \
  CHECK_EXTRA="${CHECK29:-split-bf16-k128-v64(-vi)?-w512|split-bf16-k128-v64-a(512|384)-iw-ios(-w512)?|splitd-bf16-k128-v(64|32)-a512-iw|split3-bf16-k128-v(64-a512-iw-ios-wk-w512|32-a512-iw-ios-wc|16-a512-iw-ios-wc)}" \
  EXPECT='simple_gla:s2=split-bf16-k128-v64-vi-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512' \
  B_END=95 W_END=130 K_END=130 A_END=170 C_END=180 timeout 185 bash bench/cuda/chunked/run9.sh > /tmp/run$RUN.out 2>&1
echo "run9.sh exit $?"
grep -E "auto pick|checks|ERROR|exited|t=[0-9]+s" /tmp/run$RUN.out | tail -30
python3 - "$OUT" <<'PY' 2>&1 | tee "$OUT/run29b.txt"
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
    auto = [by for v, by in vs.items() if any(x[1] for x in by.values())]
    for v, by in sorted(vs.items(), key=lambda kv: sum(x[0] for x in kv[1].values()) / len(kv[1])):
        rel = '  vs auto ' + ' '.join(f"{by[k][0] / auto[0][k][0]:.3f}" for k in sorted(by) if auto and k in auto[0])
        print(f"  {m:15s} {sh} {v:44s} " + '  '.join(f"r{k} {by[k][0]:.3f}{'*' if by[k][1] else ''} [" + ', '.join(f'{p:.3f}' for p in by[k][2]) + ']' for k in sorted(by)) + rel)
print(f"\n{'model':15s} {'sh':3s} {'floor':>6s} {'anchor':>7s} {'xfl':>5s} {'seqc r1..':>20s} {'anc/seqc':>8s}  auto pick   (err seqc / anchor on the slice)")
for r in s['rows']:
    vs = t.get((r['model'], r['shape']), {})
    auto = [(v, by) for v, by in vs.items() if any(x[1] for x in by.values())]
    rr = [x[0] for v, by in auto for k, x in sorted(by.items()) if x[1]]
    mean = sum(rr) / len(rr) if rr else None
    a, fl = r.get('anchor_ms'), r['floor_ms']
    f = lambda x, n=3: f"{x:.{n}f}" if isinstance(x, (int, float)) else '-'
    print(f"{r['model']:15s} {r['shape']:3s} {f(fl)} {f(a):>7s} {f(a / fl if a else None, 1):>5s} {' '.join(f(x) for x in rr):>20s} {f(a / mean if a and mean else None, 2):>8s}  {auto[0][0] if auto else '-'}  ({r.get('seqc_err_slice', '-')!s:.8} / {r.get('anchor_err_slice', '-')!s:.8})")
    if a:
        for v, by in sorted(vs.items()):
            ms = [x[0] for x in by.values()]
            print(f"    anchor / {v}: " + ' '.join(f"{a / x:.3f}" for x in ms) + f"  (mean {a / (sum(ms) / len(ms)):.3f})")
PY
ls -la "$OUT"
