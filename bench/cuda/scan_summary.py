"""Short table of the scan bench (check.ts's node.json + scan_anchor.py's scan_anchor.json): every hgrn
variant at B=8 D=1536 T=16384 against the copy bandwidth measured in the same call (cuMemcpyDtoD from
Node, torch copy_) and the best Triton anchor. Prints it last; writes $OUT/scan_summary.md."""
import json, os

OUT = os.environ.get("OUT", "out")
node = json.load(open(os.path.join(OUT, "node.json")))
try:
    tri = json.load(open(os.path.join(OUT, "scan_anchor.json")))
except FileNotFoundError:
    tri = {"rows": [], "errors": {}, "best_triton": None}
dev = node["device"]
copies = [r for r in node["bench"] if r["name"] == "copy"]
cu = copies[0]["gbps"] if copies else float("nan")
tc = next((r["gbps"] for r in tri["rows"] if r["name"] == "copy"), float("nan"))
best = tri.get("best_triton")
# back-to-back timings (launch overhead overlapped), where the run has them
cuB = copies[0].get("gbpsB2B") if copies else None
L = []
p = L.append
cstr = " / ".join("%.0f" % r["gbps"] for r in copies)
p(f"card: {dev['name']} (sm_{dev['sm']}, {dev['multiprocessors']} SMs), {node['date'][:19]}; copy: cuMemcpyDtoD {cstr} GB/s, torch copy_ {tc:.0f} GB/s")
checks = [c for c in node["checks"]]
bad = [c for c in checks if not c["ok"]]
p(f"checks: {len(checks) - len(bad)} / {len(checks)} within 1e-4 of float64" + (": FAILED " + "; ".join(f"{c['model']} {c['variant']} {c['shape']} {c.get('note', '')}" for c in bad[:8]) if bad else ""))
for k, v in tri.get("errors", {}).items():
    p(f"{k}: {v:.2e}")
p("| variant | ms | GB/s | % cuMemcpy | % torch copy | vs best Triton | ms back-to-back | % cuMemcpy back-to-back |")
p("|---|---|---|---|---|---|---|---|")
rows = [r for r in node["bench"] if r["name"] == "hgrn"] + [r for r in tri["rows"] if r["name"] in ("hgrn", "ceiling")]
for r in sorted(rows, key=lambda r: r["ms"]):
    vs = f"{best['ms'] / r['ms']:.3f}x" if best else ""
    bb = f"{r['msB2B']:.3f} | {r['gbpsB2B'] / cuB:.1%}" if r.get("msB2B") and cuB else " | "
    p(f"| {r['variant']} | {r['ms']:.3f} | {r['gbps']:.0f} | {r['gbps'] / cu:.1%} | {r['gbps'] / tc:.1%} | {vs} | {bb} |")
text = "\n".join(L)
open(os.path.join(OUT, "scan_summary.md"), "w").write(text + "\n")
print("\n" + text)
