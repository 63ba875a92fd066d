#!/bin/bash
# One GPU call for the torch target's step through CUDA graphs (issue 6; runtime/torch/seqc_graphs.py): the runtime
# files of this tree copied next to the modules, then
#   check.py --only-chunked per model (fp32 / fp64 chunked gradients vs seqc's float64 reference, gradcheck through
#     the chain: its repeated calls replay the captured fp64 backward) while workers precompile the anchors' Triton kernels;
#   bf16_run.py --accuracy-only (bf16 gradients vs seqc's float64 kernels, limit 1e-2);
#   graph_bench.py (graphs vs eager on fresh inputs, limit 1e-6; timing eager vs graphs, fp32 and bf16, and the anchors).
# Prepared here (git-ignored; fla / mamba_ssm sources in .anchors/, the einops wheel in .whl/, never committed):
#   npx tsx bench/torch/build-chunked.ts dist/torch-chunked-g simple_gla,mamba2,gla dist/torch-chunked-bf16
#   python3 bench/torch/old_parts.py dist/torch-chunked-bf16 dist/torch-chunked-g   (the plans before chain-copies.ts: "old")
# Device: run  command="timeout 115 bash bench/torch/graph-run.sh"  carry=["dist/torch-chunked-g", ".anchors", ".whl"]
# $OUT gets run.log, check.json, check.log, accuracy.json, graphs.json, warm.log.
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-graph-out}
MOD=${MODULES:-dist/torch-chunked-g}
MODELS=${MODELS:-simple_gla,mamba2,gla}
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
cp runtime/torch/seqc_*.py "$MOD"/
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1 | tee -a "$LOG"

PIDS=()
for m in ${MODELS//,/ }; do
  timeout "${CHECK_S:-75}" python3 bench/torch/check.py "$MOD" --only-chunked --out "/tmp/check-$m.json" "$m" > "/tmp/check-$m.log" 2>&1 &
  PIDS+=($!)
done
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-70}" python3 bench/torch/chunked_bench.py "$MOD" --models "$MODELS" --warm-fla "$i" "$W" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
grep -h "" /tmp/check-*.log > "$OUT/check.log"
python3 - "$OUT/check.json" /tmp/check-*.json <<'PY' 2>&1 | tee -a "$LOG"
import json, os, sys
rows, failures = [], []
done = [p for p in sys.argv[2:] if os.path.exists(p)]
for p in done:
    d = json.load(open(p))
    rows += d["rows"]; failures += d["failures"]
json.dump({"rows": rows, "failures": failures}, open(sys.argv[1], "w"), indent=1)
models = sorted({r["model"] for r in rows})
print("check: %d models finished (%s), %d checks, %d failed" % (len(done), ", ".join(models), len(rows), len(failures)))
for m in models:
    r = [x for x in rows if x["model"] == m]
    w = lambda pre: max([x["rel"] for x in r if x["check"].startswith(pre)] or [float("nan")])
    gc = [x for x in r if x["check"].startswith("gradcheck")]
    print("  %-17s fp32 chunked grads %.1e | fp64 chunked grads %.1e | gradcheck %s" % (
        m, w("fp32 chunked-backward"), w("fp64 chunked-backward"), "passed" if gc and all(x["ok"] for x in gc) else "FAILED/missing"))
for f in failures:
    print("FAIL", f[:300])
PY
el "checks done"
timeout "${ACC_S:-50}" python3 bench/torch/bf16_run.py "$MOD" --models "$MODELS" --accuracy-only --out "$OUT/accuracy.json" 2>&1 | tail -12 | tee -a "$LOG"
el "bf16 accuracy done"
timeout "${BENCH_S:-110}" python3 bench/torch/graph_bench.py "$MOD" --models "${BENCH_MODELS:-$MODELS}" ${BENCH_ARGS:-} --out "$OUT/graphs.json" 2>&1 | tee -a "$LOG"
el "graph bench exit ${PIPESTATUS[0]}"
