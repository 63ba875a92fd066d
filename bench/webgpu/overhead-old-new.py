"""The WGSL runner before and after a change, alternated in one process (bench/webgpu/forward-overhead.ts --old), beside
seqc's fastest CUDA chunked fp32 variant from the same device call: $OUT/overhead-bench.json and
$OUT/chunked-f32-cuda.json. Prints a markdown table and writes it to $OUT/overhead-old-new.md."""
import json, os

OUT = os.environ.get("OUT", "out")
load = lambda n: json.load(open(os.path.join(OUT, n))) if os.path.exists(os.path.join(OUT, n)) else {"rows": []}
wgsl, cuda = load("overhead-bench.json"), load("chunked-f32-cuda.json")
ok = lambda v: isinstance(v, (int, float)) and v == v
f = lambda v, d=2: f"{v:.{d}f}" if ok(v) else "-"
lines = ["| model | shape | variant (auto) | single ms old / new (old / new) | b2b ms old / new | host ms old / new | new single - b2b | CUDA fp32 ms | single / CUDA old / **new** | b2b / CUDA new |",
         "|---|---|---|---|---|---|---|---|---|---|"]
n = [0, 0, 0, 0]
for r in wgsl["rows"]:
    o = r.get("old")
    if not o:
        continue
    c = [x for x in cuda["rows"] if x["model"] == r["model"] and x["shape"] == r["shape"] and ok(x.get("ms"))]
    c = min(c, key=lambda x: x["ms"]) if c else None
    so = o["singleMs"] / c["ms"] if c else float("nan")
    sn = r["singleMs"] / c["ms"] if c else float("nan")
    bn = r["b2bMs"] / c["ms"] if c else float("nan")
    if c:
        n[0] += 1; n[1] += so <= 2; n[2] += sn <= 2; n[3] += bn <= 2
    lines.append(f"| {r['model']} | {r['shape']} | {r['variant'][8:]} | {f(o['singleMs'])} / {f(r['singleMs'])} ({f(o['singleMs'] / r['singleMs'])}x) | "
                 f"{f(o['b2bMs'])} / {f(r['b2bMs'])} | {f(o['hostMs'], 3)} / {f(r.get('hostMs', float('nan')), 3)} | {f(r['singleMs'] - r['b2bMs'])} | "
                 f"{f(c['ms']) if c else 'none fits'} | {f(so)} / **{f(sn)}** | {f(bn)} |")
lines.append(f"\nwithin 2x of CUDA fp32: single old {n[1]} of {n[0]}, single new {n[2]} of {n[0]}, back-to-back new {n[3]} of {n[0]}")
open(os.path.join(OUT, "overhead-old-new.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
