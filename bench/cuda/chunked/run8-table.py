"""Run 8's table: per case the current auto pick beside the fastest splitd variant (two rounds, the faster median
of each), their ratio, and the anchor where it ran ($OUT/anchors.json)."""
import json, glob, os, statistics as st
out = os.environ["OUT"]; t = {}; auto = {}
for f in sorted(glob.glob("/tmp/bench-*.json")):
    for r in json.load(open(f))["rows"]:
        if r["ms"] == r["ms"]:
            t.setdefault((r["model"], r["shape"], r["variant"]), []).append((r["ms"], r.get("parts", [])))
        if r.get("auto"): auto[(r["model"], r["shape"])] = r["variant"]
json.dump({"rows": [{"model": m, "shape": s, "variant": v, "ms": [x[0] for x in xs], "parts": [x[1] for x in xs], "auto": auto.get((m, s)) == v} for (m, s, v), xs in sorted(t.items())]}, open(f"{out}/chunked-bench.json", "w"), indent=1)
an = {}
try:
    a = json.load(open(f"{out}/anchors.json")); an = {(r["model"], r["shape"]): r.get("ms") for r in a["rows"]}
except Exception as e: print("no anchors:", e)
print(f"{'model':15s} {'shape':5s} {'auto (old) ms':>36s} {'best splitd ms':>44s} {'old/new':>7s} {'anchor':>7s} {'a/old':>6s} {'a/new':>6s}")
for (m, s) in sorted(auto):
    old = auto[(m, s)]; o = min(x[0] for x in t[(m, s, old)])
    ds = [(min(x[0] for x in xs), v, xs) for (mm, ss, v), xs in t.items() if mm == m and ss == s and "splitd" in v]
    if not ds: print(m, s, "no splitd row"); continue
    n, nv, xs = min(ds)
    parts = " + ".join(f"{p:.3f}" for p in min(xs)[1])
    am = an.get((m, s))
    print(f"{m:15s} {s:5s} {old[8:]:28s} {o:7.3f} {nv[8:]:28s} {n:7.3f} ({parts}) {o/n:7.3f} {am or 0:7.3f} {(am or 0)/o:6.2f} {(am or 0)/n:6.2f}")
