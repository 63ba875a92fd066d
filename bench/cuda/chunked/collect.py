"""The chunked runs' result collectors (run9.sh, run10.sh, run11.sh), one copy instead of a python block per script.

  collect.py checks OUT        /tmp/check*.json (one per check process) -> OUT/chunked-check.json, the summary line
                               and a line per failed check
  collect.py sets OUT PREFIX   /tmp/bench-<model>-pf<set>-<round>.json (the same variants built as several plan sets)
                               -> OUT/chunked-bench.json and a line per (model, shape, variant, set): every round, the
                               parts of the first, the anchor (OUT/anchors.json) and anchor / fastest round; the set is
                               printed after PREFIX ("pf" for run 10's prefetch distances, "" for run 11's old / new)
"""
import glob, json, os, re, sys


def checks(out):
    rows, dev = [], None
    for f in sorted(glob.glob("/tmp/check*.json")):
        d = json.load(open(f))
        rows += d["rows"]
        dev = d.get("device", dev)
    json.dump({"device": dev, "rows": rows} if dev else {"rows": rows}, open(f"{out}/chunked-check.json", "w"), indent=1)
    bad = [r for r in rows if not r["ok"]]
    print(f"CUDA check summary: {len(rows) - len(bad)} of {len(rows)} passed, worst {max([r['worst'] for r in rows] or [0]):.2e}")
    if not rows:
        print("ERROR: no CUDA check ran (see the check logs above)")
    for r in bad:
        print("check FAIL", r["model"], r["variant"], r["shape"], r["worst"], r.get("note", ""))


def sets(out, prefix):
    t, auto = {}, {}
    for f in sorted(glob.glob("/tmp/bench-*.json")):
        pf = re.search(r"-pf(.+)-\d+\.json$", f).group(1)
        for r in json.load(open(f))["rows"]:
            if r["ms"] == r["ms"]:
                t.setdefault((r["model"], r["shape"], r["variant"], pf), []).append((r["ms"], r.get("parts", [])))
            if r.get("auto"):
                auto[(r["model"], r["shape"], pf)] = r["variant"]
    json.dump({"rows": [{"model": m, "shape": s, "variant": v, "pf": pf, "ms": [x[0] for x in xs], "parts": [x[1] for x in xs], "auto": auto.get((m, s, pf)) == v}
                        for (m, s, v, pf), xs in sorted(t.items())]}, open(f"{out}/chunked-bench.json", "w"), indent=1)
    an = {}
    try:
        an = {(r["model"], r["shape"]): r.get("ms") for r in json.load(open(f"{out}/anchors.json"))["rows"]}
    except Exception as e:
        print("no anchors:", e)
    for (m, s, v, pf), xs in sorted(t.items()):
        mn = min(x[0] for x in xs)
        a = an.get((m, s)) or 0
        print(f"{m:14s} {s} {v[8:]:26s} {prefix}{pf} {'AUTO' if auto.get((m, s, pf)) == v else '    '} rounds {' '.join(f'{x[0]:.3f}' for x in xs)} "
              f"parts {' + '.join(f'{p:.3f}' for p in xs[0][1])}  anchor {a:.3f}  anchor/seqc(min) {a / mn if a else 0:.2f}")


if __name__ == "__main__":
    if sys.argv[1] == "checks":
        checks(sys.argv[2])
    else:
        sets(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
