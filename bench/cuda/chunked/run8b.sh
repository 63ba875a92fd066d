#!/usr/bin/env bash
# Run 8b (one call, ~100 s of script): auto's new picks (splitd with 32-value walks, a15bec1's rules + run 8) beside
# the old ones (split3 with 32-value walks) and split at the two cases where they changed, two rounds, and the
# anchors there (run 8 timed the anchors at the (4, 8192, 16, 128) cases only).
#   here:   SEQC_PLANS=dist/chunked-plans-run8b SEQC_BUILD_MODELS=simple_gla,mamba2 \
#             SEQC_BUILD_VARIANTS='^chunked-(splitd|split3|split)-bf16-k64-v32-r|^chunked-fused-bf16-k64-v64-r' \
#             npx tsx bench/cuda/chunked/build.ts
#           bash bench/cuda/chunked/bundle-run8.sh   (the same check/bench bundle)
#   device: run command="bash bench/cuda/chunked/run8b.sh"
#             carry=[".device", "dist/chunked-plans-run8b", "dist/chunked-check-run8.mjs", ".anchors", ".whl"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHUNK_DIR=/dev/shm/seqc-chunk PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=/tmp/triton-cache
export SEQC_PLANS=dist/chunked-plans-run8b SEQC_ANCHOR_CASES=simple_gla:s1,mamba2:s2
rm -rf "$SEQC_CHUNK_DIR" /tmp/bench-*.json /tmp/warm*.log
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
date +%s > /tmp/t0
now() { echo $(( $(date +%s) - $(cat /tmp/t0) )); }
el() { echo "t=$(now)s $*" | tee -a "$LOG"; }
lim() { local l=$(( $2 - $(now) )); [ $l -gt $1 ] && l=$1; [ $l -lt 1 ] && l=1; echo $l; }
timeout 30 python3 bench/cuda/chunked/anchors.py gen 2>&1 | tee -a "$LOG"
el "gen done"
for rep in 1 2; do for m in simple_gla mamba2; do
  SEQC_BENCH_JSON=/tmp/bench-$m-$rep.json timeout $(lim 15 45) node dist/chunked-check-run8.mjs bench $m >> "$LOG" 2>&1 || el "bench $m exited with $?"
done; done
grep -E "^bench " "$LOG" | tail -20
el "seqc bench done"
W=$(lim 40 80)
for i in $(seq 0 13); do timeout $W python3 bench/cuda/chunked/anchors.py warm $i 14 > "/tmp/warm$i.log" 2>&1 & done; wait
el "warm done"
timeout $(lim 30 105) python3 bench/cuda/chunked/anchors.py time 2>&1 | tee -a "$LOG" | grep -E "ERROR|copy|anchor" | head -20
el "anchors done"
python3 - <<'PY' 2>&1 | tee -a "$LOG"
import json, glob, os, statistics as st
out = os.environ["OUT"]; t = {}; auto = {}
for f in sorted(glob.glob("/tmp/bench-*.json")):
    for r in json.load(open(f))["rows"]:
        if r["ms"] == r["ms"]: t.setdefault((r["model"], r["shape"], r["variant"]), []).append((r["ms"], r.get("parts", [])))
        if r.get("auto"): auto[(r["model"], r["shape"])] = r["variant"]
json.dump({"rows": [{"model": m, "shape": s, "variant": v, "ms": [x[0] for x in xs], "parts": [x[1] for x in xs], "auto": auto.get((m, s)) == v} for (m, s, v), xs in sorted(t.items())]}, open(f"{out}/chunked-bench.json", "w"), indent=1)
an = {}
try: an = {(r["model"], r["shape"]): r.get("ms") for r in json.load(open(f"{out}/anchors.json"))["rows"]}
except Exception as e: print("no anchors:", e)
for (m, s, v), xs in sorted(t.items()):
    med = st.median([x[0] for x in xs]); a = an.get((m, s)) or 0
    print(f"{m:12s} {s} {v[8:]:26s} {'AUTO' if auto.get((m, s)) == v else '    '} median of rounds {med:.3f} ms ({' '.join(f'{x[0]:.3f}' for x in xs)}) parts {' + '.join(f'{p:.3f}' for p in xs[0][1])}  anchor {a:.3f}  anchor/seqc {a / med:.2f}")
PY
el "end"
