#!/usr/bin/env bash
# Run 27 (one call on the H200, <= 330 s): all 18 issue-5 cases with HEAD's auto picks (build-run27.sh), two seqc rounds, a
# process per model and round, seqc alone on the GPU; at DeltaNet's and Gated DeltaNet's (8, 2048, 16, 64) also split
# -a512-iw-ios beside auto's -a512-iw in both rounds; GPU checks of all against float64 (B = 2, T = 70, initial state)
# beside the anchors' Triton precompile; then the anchors (fla, mamba_ssm) alone at the 18 cases, and compare.py.
# $OUT keeps run.log, the JSON files and run27.txt (the last table: floor, anchor, seqc rounds, anchor / seqc).
# EXPECT holds ee80139's picks, the plans' commit (since c7244bd auto takes -a512-iw-ios at K = 64: build with REV=ee80139).
#   here:   bash bench/cuda/chunked/build-run27.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run27.sh" timeout_s=330
#     carry=[".device", "dist/chunked-plans-run27", "dist/chunked-check-run27.mjs", ".anchors", ".whl"]
set -uo pipefail
export OUT=${OUT:-$PWD/out} RUN=${RUN:-27}
ROUNDS=${ROUNDS:-2} ALL=deltanet:s1,gated_deltanet:s1 CHECK_EXTRA='split-bf16-k64-v32-a512-iw-ios' \
  EXPECT='simple_gla:s1=splitd-bf16-k64-v32 simple_gla:s2=split-bf16-k128-v64 simple_gla:s3=split3-bf16-k128-v32-g4t
gla:s1=split-bf16-k64-v32-mw gla:s2=split-bf16-k128-v64-a512-mw gla:s3=split3-bf16-k128-v32-a512-mw-g4t
deltanet:s1=split-bf16-k64-v32-a512-iw deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 deltanet:s3=split3-bf16-k128-v16-a512-iw-ios-wc
gated_deltanet:s1=split-bf16-k64-v32-a512-iw gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 gated_deltanet:s3=split3-bf16-k128-v16-a512-iw-ios-wc
rwkv7:s1=split-bf16-k64-v32-mw rwkv7:s2=split-bf16-k128-v64-a512-mw rwkv7:s3=split3-bf16-k128-v8-a512-mw
mamba2:s1=fused-bf16-k64-v64 mamba2:s2=splitd-bf16-k64-v32 mamba2:s3=split3-bf16-k64-v64-g4t' \
  B_END=110 W_END=205 K_END=200 A_END=295 C_END=312 timeout 318 bash bench/cuda/chunked/run9.sh > /tmp/run$RUN.out 2>&1
echo "run9.sh exit $?"
grep -E "auto pick|checks|ERROR|exited|t=[0-9]+s" /tmp/run$RUN.out | tail -30
python3 - "$OUT" <<'PY' 2>&1 | tee "$OUT/run27.txt"
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
