#!/usr/bin/env bash
# Run 7b: A/B/C of split3's low-rank walk at the third shape (1, 32768, 8, 128) — seqc against seqc, no anchors.
#   a: S0 and Z copied to their slots from shared memory (16 bytes a thread) right after each barrier (baf388a)
#   b: S0 stored from the fragments before the barrier, Z from the product's epilogue (4-byte stores; before baf388a)
#   c: as a, but the copies after the products (S0 after Z = U0 + M S0, Z after the state update)
# Each built from its own tree into dist/chunked-plans-ab-<a|b|c> (SEQC_BUILD_MODELS=deltanet,gated_deltanet,rwkv7
# SEQC_BUILD_VARIANTS='split3-bf16-k128-v(8|16)-a(384|512)-' npx tsx bench/cuda/chunked/build.ts), timed in turn
# three times (a, b, c, a, b, c, ...), a process per (tree, model).
#   device: run command="bash bench/cuda/chunked/ab7.sh"  carry=[".device", "dist/chunked-plans-ab-a",
#             "dist/chunked-plans-ab-b", "dist/chunked-plans-ab-c", "dist/chunked-check-run7.mjs", ".anchors", ".whl"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1
export SEQC_ANCHOR_CASES=deltanet:s3,gated_deltanet:s3,rwkv7:s3
rm -rf "$SEQC_CHUNK_DIR" /tmp/ab-*.json
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$OUT/ab.log"
timeout 40 python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee -a "$OUT/ab.log"
for rep in 1 2 3; do for w in a b c; do for m in deltanet gated_deltanet rwkv7; do
  SEQC_PLANS=dist/chunked-plans-ab-$w SEQC_BENCH_AUTO_ONLY=1 SEQC_BENCH_ALL=$m:s3 SEQC_BENCH_JSON=$OUT/ab-$w-$m-$rep.json \
    timeout 30 node dist/chunked-check-run7.mjs bench $m s3 2>&1 | grep "^bench $m " | sed "s/^/$w rep$rep /" | tee -a "$OUT/ab.log"
done; done; done
python3 - <<'PY' 2>&1 | tee -a "$OUT/ab.log"
import json, glob, os, statistics as st
out = os.environ["OUT"]; t = {}
for f in glob.glob(f"{out}/ab-*.json"):
    w = os.path.basename(f).split("-")[1]
    for r in json.load(open(f))["rows"]:
        t.setdefault((r["model"], r["variant"], w), []).append((r["ms"], r.get("parts", [0, 0, 0])[1]))
for (m, v, w) in sorted(t):
    xs = t[(m, v, w)]
    print(f"{m:15s} {v:38s} {w}  forward {st.median([x[0] for x in xs]):.3f} ms  walk {st.median([x[1] for x in xs]):.3f} ms  ({len(xs)} runs: {' '.join(f'{x[0]:.3f}' for x in xs)})")
PY
