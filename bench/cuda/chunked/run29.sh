#!/usr/bin/env bash
# Run 29 (one call on the H200, <= 240 s): issue 5's two misses at (4, 8192, 16, 128), every variant of
# build-run29.sh's plans (Simple GLA: auto's split-v64-w512 against split without alpha v in the record, -vi /
# -vi-w512 / -vib-w512; Gated DeltaNet: auto's split-v64-a512-iw-ios-w512 and its -wq walk), three seqc rounds, a process
# per model and round, the second round in reverse plan order; GPU checks of all of them against float64 (B = 2, T = 70,
# initial state) beside fla's Triton precompile; then fla chunk_simple_gla and chunk_gated_delta_rule alone at those
# cases, and compare.py. $OUT keeps run.log, the JSON files and run29.txt (every variant's rounds and parts, then floor,
# anchor, auto's rounds, anchor / seqc).
#   here:   bash bench/cuda/chunked/build-run29.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run29.sh" timeout_s=240
#     carry=[".device", "dist/chunked-plans-run29", "dist/chunked-check-run29.mjs", ".anchors", ".whl"]
# Run 29b (the second call): plans of 9f4b7f1 (auto's -vi-w512), RUN=29b bash bench/cuda/chunked/build-run29.sh here, then
#   run command="source .device/enter.sh && RUN=29b EXPECT29='simple_gla:s2=split-bf16-k128-v64-vi-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512' bash bench/cuda/chunked/run29.sh"
#     carry=[".device", "dist/chunked-plans-run29b", "dist/chunked-check-run29b.mjs", ".anchors", ".whl"]
set -uo pipefail
export OUT=${OUT:-$PWD/out} RUN=${RUN:-29}
ROUNDS=${ROUNDS:-3} REVERSE_EVEN=1 MODELS="simple_gla gated_deltanet" ALL=simple_gla:s2,gated_deltanet:s2 SEQC_ANCHOR_CASES=simple_gla:s2,gated_deltanet:s2 \
  CHECK_EXTRA='split-bf16-k128-v(64|32)(-vi|-vib)?(-w512)?|split-bf16-k128-v64-a512-iw-ios(-wq)?-w512' \
  EXPECT="${EXPECT29:-simple_gla:s2=split-bf16-k128-v64-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512}" \
  B_END=100 W_END=150 K_END=150 A_END=200 C_END=215 timeout 220 bash bench/cuda/chunked/run9.sh > /tmp/run$RUN.out 2>&1
echo "run9.sh exit $?"
grep -E "auto pick|checks|ERROR|exited|t=[0-9]+s" /tmp/run$RUN.out | tail -30
python3 - "$OUT" <<'PY' 2>&1 | tee "$OUT/run29.txt"
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
