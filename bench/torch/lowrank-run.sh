#!/bin/bash
# One GPU call for the torch target's low-rank chunked backward (issue 6): bench/torch/check.py --only-chunked on
# DeltaNet, Gated DeltaNet and RWKV-7 (one process per model: fp32 / fp64 gradients with backward="chunked" vs seqc's
# float64 reference, gradcheck through the chain) while worker processes precompile fla's Triton kernels, then
# bench/torch/lowrank_bench.py (fwd+bwd: seqc chunked vs seqc step vs fla's chunk kernels, one process).
# Prepared here (git-ignored; fla sources in .anchors/ and the einops wheel in .whl/, never committed):
#   npx tsx bench/torch/build-chunked.ts dist/torch-lowrank deltanet,gated_deltanet,rwkv7
#   npx tsx bench/torch/lowrank-reference.ts dist/torch-lowrank/ref
# Device: run  command="timeout 280 bash bench/torch/lowrank-run.sh"  carry=["dist/torch-lowrank", ".anchors", ".whl"]
# $OUT gets run.log, check.json, check.log, bench.json, bench.log, warm.log. Env: MODULES, MODELS, SHAPES, CHECK_S, WARM_S,
# BENCH_S, BUDGET, STEP_SHAPES (seqc's step backward timed at these; "" none), VARIANTS (lowrank_bench.py --variants),
# PROFILE (non-empty: one eager step per model under torch.profiler, $OUT/profile-<model>.txt), ACCURACY (BxT: with
# VARIANTS=6, bf16-input gradients vs float64 at that size).
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-lowrank-out}
MOD=${MODULES:-dist/torch-lowrank}
MODELS=${MODELS:-deltanet,gated_deltanet,rwkv7}
SHAPES=${SHAPES:-8x2048x16x64,4x8192x16x128}
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1 | tee -a "$LOG"

PIDS=()
for m in ${MODELS//,/ }; do
  timeout "${CHECK_S:-90}" python3 bench/torch/check.py "$MOD" --only-chunked --out "/tmp/check-$m.json" "$m" > "/tmp/check-$m.log" 2>&1 &
  PIDS+=($!)
done
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-90}" python3 bench/torch/lowrank_bench.py "$MOD" --models "$MODELS" --shapes "$SHAPES" --warm-fla "$i" "$W" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
for m in ${MODELS//,/ }; do cat "/tmp/check-$m.log"; done > "$OUT/check.log"
python3 - "$OUT/check.json" /tmp/check-*.json <<'PY' 2>&1 | tee -a "$LOG"
import json, os, sys
rows, failures, dev = [], [], None
done = [p for p in sys.argv[2:] if os.path.exists(p)]
for p in done:
    d = json.load(open(p))
    rows += d["rows"]; failures += d["failures"]; dev = d["device"]
json.dump({"device": dev, "rows": rows, "failures": failures}, open(sys.argv[1], "w"), indent=1)
models = sorted({r["model"] for r in rows})
print("check: %d models finished (%s), %d checks, %d failed" % (len(done), ", ".join(models), len(rows), len(failures)))
for m in models:
    r = [x for x in rows if x["model"] == m]
    w = lambda pre: max([x["rel"] for x in r if x["check"].startswith(pre)] or [float("nan")])
    gc = [x for x in r if x["check"].startswith("gradcheck")]
    print("  %-15s fp32 chunked grads %.1e | fp64 chunked grads %.1e | auto fwd %.1e | gradcheck %s" % (
        m, w("fp32 chunked-backward"), w("fp64 chunked-backward"), w("fp32 forward"),
        "passed" if gc and all(x["ok"] for x in gc) else "FAILED/missing"))
for f in failures:
    print("FAIL", f[:300])
PY
for m in ${MODELS//,/ }; do [ -f "/tmp/check-$m.json" ] || el "check $m did not finish: $(tail -5 /tmp/check-$m.log | tr '\n' ' ')"; done
el "phase 1 done (checks, precompile)"

timeout "${BENCH_S:-150}" python3 bench/torch/lowrank_bench.py "$MOD" --models "$MODELS" --shapes "$SHAPES" --out "$OUT/bench.json" --budget "${BUDGET:-110}" \
  --step-shapes "${STEP_SHAPES-8x2048x16x64}" --variants "${VARIANTS:-1}" ${PROFILE:+--profile "$OUT"} ${ACCURACY:+--accuracy "$ACCURACY"} 2>&1 | tee "$OUT/bench.log" | tee -a "$LOG" | tail -60
el "bench exit ${PIPESTATUS[0]}"
