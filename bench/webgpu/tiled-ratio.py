"""Old (s3) vs new (s3t) WGSL chunked split3 kernels beside seqc's fastest CUDA chunked fp32 variant, all from one
device call: $OUT/tiled-bench.json (bench/webgpu/chunked-tiled.ts) and $OUT/chunked-f32-cuda.json
(bench/cuda/chunked/f32.ts). Prints a markdown table and writes it to $OUT/tiled-table.md."""
import json, os

OUT = os.environ.get("OUT", "out")
load = lambda n: json.load(open(os.path.join(OUT, n))) if os.path.exists(os.path.join(OUT, n)) else {"rows": []}
wgsl, cuda = load("tiled-bench.json"), load("chunked-f32-cuda.json")
ok = lambda v: isinstance(v, (int, float)) and v == v
f = lambda v, d=2: f"{v:.{d}f}" if ok(v) else "-"
med = lambda xs: sorted(xs)[len(xs) // 2] if xs else float("nan")
lines = ["| model | shape | IO floor ms | WGSL s3 ms (variant) | s3 A / walk / readout | WGSL s3t ms | s3t A / walk / readout | s3 / s3t | A alone old / new ms | CUDA fp32 ms (variant) | s3 / CUDA | **s3t / CUDA** |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
within = [0, 0, 0]
for r in wgsl["rows"]:
    c = [x for x in cuda["rows"] if x["model"] == r["model"] and x["shape"] == r["shape"] and ok(x.get("ms"))]
    c = min(c, key=lambda x: x["ms"]) if c else None
    parts = lambda p, tot: f"{p[0]:.2f} / {p[1] - p[0]:.2f} / {tot - p[1]:.2f}" if p and ok(tot) else "-"
    ro = r["oldMs"] / c["ms"] if c and ok(r["oldMs"]) else float("nan")
    rn = r["newMs"] / c["ms"] if c and ok(r["newMs"]) else float("nan")
    if c:
        within[0] += 1; within[1] += ro <= 2; within[2] += rn <= 2
    lines.append(f"| {r['model']} | {r['shape']} | {f(r['floorMs'], 3)} | {f(r['oldMs'])} ({r['old'][8:]}) | {parts(r.get('oldParts'), r['oldMs'])} | {f(r['newMs'])} | "
                 f"{parts(r.get('newParts'), r['newMs'])} | {f(r['oldMs'] / r['newMs'] if ok(r['newMs']) else None)} | {f(med(r.get('oldA', [])), 3)} / {f(med(r.get('newA', [])), 3)} | "
                 f"{f(c['ms']) + ' (' + c['variant'][8:] + ')' if c else 'none fits'} | {f(ro)} | **{f(rn)}** |")
lines.append(f"\nwithin 2x of CUDA fp32: s3 {within[1]} of {within[0]}, s3t {within[2]} of {within[0]}")
open(os.path.join(OUT, "tiled-table.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
