"""Side-by-side table of check.ts (seqc CUDA) and anchors.py (PyTorch) results; prints it last and writes $OUT/summary.md."""
import json, os

OUT = os.environ.get("OUT", "out")
node = json.load(open(os.path.join(OUT, "node.json")))
try:
    torch = json.load(open(os.path.join(OUT, "torch.json")))
except FileNotFoundError:
    torch = {"rows": [], "errors": {}}
lines = []
p = lines.append
dev = node["device"]
p(f"card: {dev['name']} (sm_{dev['sm']}, {dev['multiprocessors']} SMs, driver {dev['driverVersion']}), date {node['date'][:10]}, torch {torch.get('torch', '?')}, cuDNN {torch.get('cudnn', '?')}, NVRTC {node['nvrtc']}")
checks = node["checks"]
bad = [c for c in checks if not c["ok"]]
p(f"correctness: {len(checks) - len(bad)} / {len(checks)} model x variant x shape cases within 1e-4 of the float64 interpreter")
for c in checks:
    if c["worst"] is None:  # JSON has no Infinity: check.ts wrote a non-finite error
        c["worst"] = float("inf")
worst = {}
for c in checks:
    k = (c["model"], c["variant"])
    worst[k] = max(worst.get(k, 0), c["worst"])
p("| model | variant | worst rel. error |")
p("|---|---|---|")
for (m, v), e in sorted(worst.items()):
    p(f"| {m} | {v} | {e:.2e}{'' if e <= 1e-4 else ' FAIL'} |")
for c in bad:
    p(f"FAILED: {c['model']} {c['variant']} {c['shape']} {c.get('note', '')} {c['errors']}")
for k, v in torch.get("errors", {}).items():
    p(f"fp64 check at bench shape: {k}: {v:.2e}")
rows = node["bench"] + [dict(r, source="torch") for r in torch["rows"]]
copy_node = next((r["gbps"] for r in node["bench"] if r["name"] == "copy"), None)
copy_torch = next((r["gbps"] for r in torch["rows"] if r["name"] == "copy"), None)
p("")
p("| bench | variant | shape | ms (median) | GB/s | ratio |")
p("|---|---|---|---|---|---|")
for r in rows:
    ratio = ""
    if r["name"] == "hgrn" and "gbps" in r and copy_node:
        ratio = f"{r['gbps'] / copy_node:.1%} of copy"
    if r["name"] in ("lstm", "gru") and r.get("source") != "torch":
        ref = next((t for t in torch["rows"] if t["name"] == r["name"] and t.get("shape") == r["shape"] and t["variant"] == "cuDNN fp32"), None)
        if ref:
            ratio = f"{ref['ms'] / r['ms']:.2f}x vs cuDNN fp32"
    p(f"| {r['name']} | {r['variant']} | {r.get('shape', '')} | {r['ms']:.3f} | {r['gbps']:.0f} |" if "gbps" in r else f"| {r['name']} | {r['variant']} | {r.get('shape', '')} | {r['ms']:.3f} | |")
    lines[-1] += f" {ratio}{(' (' + r['note'] + ')') if r.get('note') else ''} |"
text = "\n".join(lines)
open(os.path.join(OUT, "summary.md"), "w").write(text + "\n")
print("\n" + text)
