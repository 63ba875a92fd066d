"""The last table of a chunked device run (bench/cuda/chunked/run-plans.sh, runs 21-29b): $OUT/chunked-bench.json's
forward times per variant and round, and with --summary compare.py's chunked-summary.json beside them.

  python3 run-table.py [--shape] [--parts] [--width N] OUT             a line per (model[, shape], variant): ms per round
                                                                        (--parts: [phase A, walk] after each round)
  python3 run-table.py --summary [--rel] OUT                           every variant's rounds and parts, then per case the
                                                                        floor, anchor, auto's rounds, anchor / seqc
                                                                        (--rel: variants sorted by mean, x auto per round,
                                                                        all of auto's rounds, anchor / each variant)

Each form prints what the per-run heredoc it replaces printed (runs 21 / 24: --width 42 / 46; 22 / 23b: --shape --width
42 / 44; 25: --parts --width 48; 26 / 26b: --shape --parts --width 50; 27 / 28: --summary; 29 / 29b: --summary --rel);
bench/cuda/chunked/check-run-wrappers.sh compares them on recorded result files.
"""
import argparse
import collections
import json
import os


def plain(out, shape, parts, width):
    d = json.load(open(out + '/chunked-bench.json'))
    t = collections.defaultdict(dict)
    for r in d['rows']:
        if r.get('ms') is not None:
            key = (r['model'], r['shape'], r['variant']) if shape else (r['model'], r['variant'])
            t[key][r['round']] = (r['ms'], r.get('parts') or []) if parts else r['ms']
    print('device', d.get('device'))
    for key, by in sorted(t.items()):
        head = f"{key[0]:15s} {key[1]} {key[2]:{width}s} " if shape else f"{key[0]:15s} {key[1]:{width}s} "
        if parts:
            print(head + '  '.join(f"r{k} {by[k][0]:.3f} [" + ', '.join(f'{p:.3f}' for p in by[k][1]) + ']' for k in sorted(by)))
        else:
            print(head + ' '.join(f"r{k} {by[k]:.3f}" for k in sorted(by)))


def rounds(k, by):
    return f"r{k} {by[k][0]:.3f}{'*' if by[k][1] else ''} [" + ', '.join(f'{p:.3f}' for p in by[k][2]) + ']'


def summary(out, rel):
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
        order = sorted(vs.items(), key=lambda kv: sum(x[0] for x in kv[1].values()) / len(kv[1])) if rel else sorted(vs.items())
        for v, by in order:
            tail = ('  vs auto ' + ' '.join(f"{by[k][0] / auto[0][k][0]:.3f}" for k in sorted(by) if auto and k in auto[0])) if rel else ''
            print(f"  {m:15s} {sh} {v:44s} " + '  '.join(rounds(k, by) for k in sorted(by)) + tail)
    if rel:
        print(f"\n{'model':15s} {'sh':3s} {'floor':>6s} {'anchor':>7s} {'xfl':>5s} {'seqc r1..':>20s} {'anc/seqc':>8s}  auto pick   (err seqc / anchor on the slice)")
    else:
        print(f"\n{'model':15s} {'sh':3s} {'floor':>6s} {'anchor':>7s} {'xfl':>5s} {'seqc r1':>8s} {'seqc r2':>8s} {'anc/seqc':>8s}  auto pick   (err seqc / anchor on the slice)")
    f = lambda x, n=3: f"{x:.{n}f}" if isinstance(x, (int, float)) else '-'
    for r in s['rows']:
        vs = t.get((r['model'], r['shape']), {})
        auto = [(v, by) for v, by in vs.items() if any(x[1] for x in by.values())]
        rr = [x[0] for v, by in auto for k, x in sorted(by.items()) if x[1]]
        if rel:
            mean = sum(rr) / len(rr) if rr else None
        else:
            ms = [x[0] for v, by in auto for x in by.values() if x[1]]
            mean = sum(ms) / len(ms) if ms else None
        a, fl = r.get('anchor_ms'), r['floor_ms']
        seqc = f"{' '.join(f(x) for x in rr):>20s}" if rel else f"{f(rr[0] if rr else None):>8s} {f(rr[1] if len(rr) > 1 else None):>8s}"
        print(f"{r['model']:15s} {r['shape']:3s} {f(fl)} {f(a):>7s} {f(a / fl if a else None, 1):>5s} {seqc} {f(a / mean if a and mean else None, 2):>8s}  {auto[0][0] if auto else '-'}  ({r.get('seqc_err_slice', '-')!s:.8} / {r.get('anchor_err_slice', '-')!s:.8})")
        if rel and a:
            for v, by in sorted(vs.items()):
                ms = [x[0] for x in by.values()]
                print(f"    anchor / {v}: " + ' '.join(f"{a / x:.3f}" for x in ms) + f"  (mean {a / (sum(ms) / len(ms)):.3f})")


if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('out')
    p.add_argument('--shape', action='store_true')
    p.add_argument('--parts', action='store_true')
    p.add_argument('--width', type=int, default=42)
    p.add_argument('--summary', action='store_true')
    p.add_argument('--rel', action='store_true')
    a = p.parse_args()
    summary(a.out, a.rel) if a.summary else plain(a.out, a.shape, a.parts, a.width)
