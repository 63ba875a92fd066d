"""WGSL chunked (fp32) against seqc's CUDA chunked times of the same device call: auto's bf16 pick
($OUT/chunked-bench.json, rows marked auto) and the fastest fp32 variant ($OUT/chunked-f32-cuda.json), per
benchmark shape. Reads the WGSL bench's rows from $OUT/wgsl-chunked-bench.json; prints a table (no file: the
device tool returns at most eight)."""
import json, os

OUT = os.environ.get("OUT", "out")
TAGS = {"B=8 T=2048 H=16 K=V=64": "s1", "B=4 T=8192 H=16 K=V=128": "s2", "B=1 T=32768 H=8 K=V=128": "s3"}


def load(name):
    path = os.path.join(OUT, name)
    return json.load(open(path)) if os.path.exists(path) else {"rows": []}


wgsl, bf16, f32 = load("wgsl-chunked-bench.json"), load("chunked-bench.json"), load("chunked-f32-cuda.json")
ok = lambda r: isinstance(r.get("ms"), (int, float)) and r["ms"] == r["ms"]
rows = []
for label, tag in TAGS.items():
    for model in ["simple_gla", "gla", "deltanet", "gated_deltanet", "rwkv7", "mamba2"]:
        w = [r for r in wgsl["rows"] if r["model"] == model and r["shape"] == label and ok(r) and r["variant"].startswith("chunked/")]
        w = min(w, key=lambda r: r["ms"]) if w else None
        b = next((r for r in bf16["rows"] if r["model"] == model and r["shape"] == tag and r.get("auto") and ok(r)), None)
        f = [r for r in f32["rows"] if r["model"] == model and r["shape"] == label and ok(r)]
        f = min(f, key=lambda r: r["ms"]) if f else None
        rows.append({"model": model, "shape": label, "wgsl_ms": w and w["ms"], "wgsl_variant": w and w["variant"],
                     "cuda_bf16_ms": b and b["ms"], "cuda_bf16_variant": b and b["variant"],
                     "cuda_f32_ms": f and f["ms"], "cuda_f32_variant": f and f["variant"]})
x = lambda a, b: f"{a / b:.2f}" if a and b else "-"
t = lambda v: f"{v:.3f}" if v else "-"
print(f"\n{'model':15s} {'shape':24s} {'WGSL ms':>8s} {'CUDA bf16':>9s} {'W/bf16':>6s} {'CUDA f32':>8s} {'W/f32':>6s}  WGSL variant | CUDA f32 variant")
for r in sorted(rows, key=lambda r: (["simple_gla", "gla", "deltanet", "gated_deltanet", "rwkv7", "mamba2"].index(r["model"]), list(TAGS).index(r["shape"]))):
    print(f"{r['model']:15s} {r['shape']:24s} {t(r['wgsl_ms']):>8s} {t(r['cuda_bf16_ms']):>9s} {x(r['wgsl_ms'], r['cuda_bf16_ms']):>6s} {t(r['cuda_f32_ms']):>8s} {x(r['wgsl_ms'], r['cuda_f32_ms']):>6s}  {r['wgsl_variant'] or '-'} | {r['cuda_f32_variant'] or 'none fits'}")
n = lambda key: sum(1 for r in rows if r["wgsl_ms"] and r[key] and r["wgsl_ms"] <= 2 * r[key])
m = lambda key: sum(1 for r in rows if r["wgsl_ms"] and r[key])
print(f"within 2x: of CUDA bf16 auto {n('cuda_bf16_ms')} of {m('cuda_bf16_ms')}, of CUDA fp32 fastest {n('cuda_f32_ms')} of {m('cuda_f32_ms')}")
