#!/bin/bash
# One GPU call for the low-rank family's chunk-state backward (seqc_chunked_lowrank LR_BWD "wy",
# runtime/torch/seqc_lowrank_wy.py; issue 6): bench/torch/check.py --only-chunked per model with LR_BWD "wy" (fp32 /
# fp64 gradients vs seqc's float64 reference, gradcheck through it) while worker processes precompile fla's Triton
# kernels, then bench/torch/lowrank_bench.py --variants 9 (fwd+bwd with the chain and with wy, fp32 and bf16, beside
# fla, one process; sections, a profile, gradients vs float64 at ACCURACY). VARIANTS=10: the walks over the chunks by
# torch products and by the pass kernel (LR_FUSED_PASS) with the chain and with wy (modules built after lowrank-pass.ts).
# VARIANTS=12: the glue's y read, copies and merged decay steps old vs new (LR_Y_READ, LR_COPIES, LR_MERGE); LR_SETS
# (k=v,...) sets more seqc_chunked_lowrank switches for the checks.
# Prepared here (git-ignored):
#   npx tsx bench/torch/build-chunked.ts dist/torch-lowrank-wy deltanet,gated_deltanet
#   npx tsx bench/torch/lowrank-reference.ts dist/torch-lowrank-wy/ref deltanet gated_deltanet
# Device: run command="timeout 235 bash bench/torch/lowrank-wy-run.sh" carry=["dist/torch-lowrank-wy", ".anchors"]
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-wy-out}
MOD=${MODULES:-dist/torch-lowrank-wy}
MODELS=${MODELS:-deltanet,gated_deltanet}
SHAPES=${SHAPES:-8x2048x16x64}
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee "$OUT/card.txt" | tee -a "$LOG"
export PYTHONPATH=$PWD/.anchors
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1 | tee -a "$LOG"

PIDS=()
for m in ${MODELS//,/ }; do
  timeout "${CHECK_S:-60}" python3 -c "
import runpy, sys
sys.path.insert(0, '$MOD')
import os, seqc_chunked_lowrank as lr
lr.LR_BWD = 'wy'
for kv in os.environ.get('LR_SETS', '').split(','):  # more switches for the checks, e.g. LR_SETS=LR_MERGE=decay
    if kv:
        setattr(lr, kv.split('=')[0], kv.split('=')[1])
sys.argv = ['check.py', '$MOD', '--only-chunked', '--out', '/tmp/check-$m.json', '$m']
runpy.run_path('bench/torch/check.py', run_name='__main__')" > "/tmp/check-$m.log" 2>&1 &
  PIDS+=($!)
done
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-60}" python3 bench/torch/lowrank_bench.py "$MOD" --models "$MODELS" --shapes "$SHAPES" --warm-fla "$i" "$W" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
for p in "${PIDS[@]}"; do wait "$p"; done
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
print("check (LR_BWD wy): %d models finished (%s), %d checks, %d failed" % (len(done), ", ".join(models), len(rows), len(failures)))
for m in models:
    r = [x for x in rows if x["model"] == m]
    w = lambda pre: max([x["rel"] for x in r if x["check"].startswith(pre)] or [float("nan")])
    gc = [x for x in r if x["check"].startswith("gradcheck")]
    print("  %-15s fp32 chunked grads %.1e | fp64 chunked grads %.1e | gradcheck %s" % (
        m, w("fp32 chunked-backward"), w("fp64 chunked-backward"), "passed" if gc and all(x["ok"] for x in gc) else "FAILED/missing"))
for f in failures:
    print("FAIL", f[:300])
PY
for m in ${MODELS//,/ }; do [ -f "/tmp/check-$m.json" ] || el "check $m did not finish: $(tail -5 /tmp/check-$m.log | tr '\n' ' ')"; done
el "phase 1 done (checks, precompile)"

timeout "${BENCH_S:-150}" python3 bench/torch/lowrank_bench.py "$MOD" --models "$MODELS" --shapes "$SHAPES" --out "$OUT/bench.json" --budget "${BUDGET:-110}" \
  --step-shapes "" --variants "${VARIANTS:-9}" ${PROFILE:+--profile "$OUT"} ${ACCURACY:+--accuracy "$ACCURACY"} 2>&1 | tee "$OUT/bench.txt" | tail -40
el "bench exit ${PIPESTATUS[0]}"
