#!/bin/bash
# One GPU call for the torch target's chunked backward (issue 6): bench/torch/check.py --only-chunked on every
# module (one process per model: fp32 / fp64 gradients with backward="chunked" vs seqc's float64 reference,
# gradcheck through the chain) while worker processes precompile the anchors' Triton kernels, then
# bench/torch/chunked_bench.py (forward + backward, seqc chunked vs seqc step vs fla / mamba_ssm, one process).
# Prepared here (git-ignored; fla / mamba_ssm sources in .anchors/ and the einops wheel in .whl/, never committed):
#   npx tsx bench/torch/build-chunked.ts dist/torch-chunked
# Device: run  command="timeout 270 bash bench/torch/chunked-run.sh"  carry=["dist/torch-chunked", ".anchors", ".whl"]
# $OUT gets run.log, check.json, check.log, bench.json, warm.log, profile.json, profile.log.
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-chunked-out}
MOD=${MODULES:-dist/torch-chunked}
MODELS=${MODELS:-simple_gla,gla,linear_attention,retnet,mamba2}
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1 | tee -a "$LOG"

PIDS=()
for f in "$MOD"/ref/*.json; do
  m=$(basename "$f" .json)
  timeout "${CHECK_S:-75}" python3 bench/torch/check.py "$MOD" --only-chunked --out "/tmp/check-$m.json" "$m" > "/tmp/check-$m.log" 2>&1 &
  PIDS+=($!)
done
W=${WARM_WORKERS:-9}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-75}" python3 bench/torch/chunked_bench.py "$MOD" --models "$MODELS" --warm-fla "$i" "$W" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
grep -h "" /tmp/check-*.log > "$OUT/check.log"
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
    print("  %-17s fp32 chunked grads %.1e | fp64 chunked grads %.1e | auto fwd %.1e | gradcheck %s" % (
        m, w("fp32 chunked-backward"), w("fp64 chunked-backward"), w("fp32 forward"),
        "passed" if gc and all(x["ok"] for x in gc) else "FAILED/missing"))
for f in failures:
    print("FAIL", f[:300])
PY
ls "$MOD"/ref/*.json | sed 's|.*/||; s|.json||' | while read -r m; do [ -f "/tmp/check-$m.json" ] || el "check $m did not finish: $(tail -3 /tmp/check-$m.log | tr '\n' ' ')"; done
el "phase 1 done (checks, precompile)"

timeout "${BENCH_S:-120}" python3 bench/torch/chunked_bench.py "$MOD" --models "$MODELS" --out "$OUT/bench.json" --budget "${BUDGET:-90}" 2>&1 | tee -a "$LOG"
el "bench exit ${PIPESTATUS[0]}"
if [ "${PROFILE:-1}" = 1 ]; then  # host vs GPU per plan, the kernels' GPU time, cProfile (bench/torch/chunked_profile.py)
  timeout "${PROFILE_S:-75}" python3 bench/torch/chunked_profile.py "$MOD" --models "${PROFILE_MODELS:-simple_gla,gla,mamba2}" --out "$OUT/profile.json" > "$OUT/profile.log" 2>&1
  el "profile exit $?"
fi
