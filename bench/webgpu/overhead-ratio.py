"""WGSL chunked forwards timed one at a time (awaited) and back to back, beside seqc's fastest CUDA chunked fp32 variant,
from one device call: $OUT/overhead-bench.json (bench/webgpu/forward-overhead.ts) and $OUT/chunked-f32-cuda.json
(bench/cuda/chunked/f32.ts). Prints a markdown table and writes it to $OUT/overhead-table.md."""
import json, os

OUT = os.environ.get("OUT", "out")
load = lambda n: json.load(open(os.path.join(OUT, n))) if os.path.exists(os.path.join(OUT, n)) else {"rows": []}
wgsl, cuda = load("overhead-bench.json"), load("chunked-f32-cuda.json")
ok = lambda v: isinstance(v, (int, float)) and v == v
f = lambda v, d=2: f"{v:.{d}f}" if ok(v) else "-"
lines = ["| model | shape | variant (auto) | single ms | back-to-back ms (A / walk / readout) | single - b2b ms | CUDA fp32 ms (variant) | single / CUDA | **b2b / CUDA** |",
         "|---|---|---|---|---|---|---|---|---|"]
n = [0, 0, 0]
for r in wgsl["rows"]:
    c = [x for x in cuda["rows"] if x["model"] == r["model"] and x["shape"] == r["shape"] and ok(x.get("ms"))]
    c = min(c, key=lambda x: x["ms"]) if c else None
    rs = r["singleMs"] / c["ms"] if c else float("nan")
    rb = r["b2bMs"] / c["ms"] if c else float("nan")
    if c:
        n[0] += 1; n[1] += rs <= 2; n[2] += rb <= 2
    parts = f"{f(r['aMs'])} / {f(r['awMs'] - r['aMs'])} / {f(r['b2bMs'] - r['awMs'])}" if ok(r.get("aMs")) and ok(r.get("awMs")) else "-"
    lines.append(f"| {r['model']} | {r['shape']} | {r['variant'][8:]} | {f(r['singleMs'])} | {f(r['b2bMs'])} ({parts}) | {f(r['singleMs'] - r['b2bMs'])} | "
                 f"{f(c['ms']) + ' (' + c['variant'][8:] + ')' if c else 'none fits'} | {f(rs)} | **{f(rb)}** |")
lines.append(f"\nwithin 2x of CUDA fp32: single {n[1]} of {n[0]}, back-to-back {n[2]} of {n[0]}")
open(os.path.join(OUT, "overhead-table.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
