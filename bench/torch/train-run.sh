#!/bin/bash
# One GPU call for issue 6's performance section: bench/torch/check.py on every compiled model (one process per
# model, in parallel), then bench/torch/train_bench.py (forward + backward through seqc's torch target beside
# cuDNN's LSTM/GRU and flash-linear-attention's chunk kernels, one process). While the checks run, worker
# processes precompile the anchors' Triton kernels (their share of every autotuned config) and one process has
# the driver JIT seqc's plans into its cache, so the timed process only autotunes and times.
# Prepared here (modules and reference data in a git-ignored folder; fla/mamba_ssm sources in .anchors/ and the
# einops wheel in .whl/, both git-ignored, never committed):
#   npx seqc compile stdlib/{deltanet,gated_deltanet,gla,mamba,lstm,gru,hgrn,mamba2,simple_gla}.seq --target torch --out dist/torch-train
#   npx tsx bench/torch/make-reference.ts dist/torch-train/ref
# Device: run  command="timeout 185 bash bench/torch/train-run.sh"  carry=["dist/torch-train", ".anchors", ".whl"]
# $OUT gets run.log, check.json, check.log, train-bench.json, warm.log.
# LSTM/GRU extras: CELL_VARIANTS (record and backward forced to each cell variant), PASS_WAYS (seqc_torch.PASS_MATMUL
# set to each way, e.g. "kernel": the pass plans), PROFILE=1 (one step per way and cuDNN's under torch.profiler).
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-train-out}
MOD=${MODULES:-dist/torch-train}
MODELS=${MODELS:-lstm,gru,deltanet,gated_deltanet,gla,simple_gla}
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'triton', triton.__version__)" 2>&1 | tee -a "$LOG"

# phase 1: checks (one process per model), Triton precompile, seqc JIT
PIDS=()
for f in "$MOD"/ref/*.json; do
  m=$(basename "$f" .json)
  timeout "${CHECK_S:-70}" python3 bench/torch/check.py "$MOD" --out "/tmp/check-$m.json" "$m" > "/tmp/check-$m.log" 2>&1 &
  PIDS+=($!)
done
W=${WARM_WORKERS:-10}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-70}" python3 bench/torch/train_bench.py "$MOD" --models "$MODELS" --warm-fla "$i" "$W" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${WARM_S:-70}" python3 bench/torch/train_bench.py "$MOD" --models "$MODELS" --warm-seqc > /tmp/warm-seqc.log 2>&1 &
PIDS+=($!)
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm-seqc.log /tmp/warm[0-9]*.log > "$OUT/warm.log"
grep -h "" /tmp/check-*.log > "$OUT/check.log"
python3 - "$OUT/check.json" /tmp/check-*.json <<'EOF' 2>&1 | tee -a "$LOG"
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
    print("  %-15s fp32 fwd %.1e grads %.1e nograd %.1e | fp64 fwd %.1e grads %.1e | gradcheck %s" % (
        m, w("fp32 grad-forward"), w("fp32 backward"), w("fp32 forward"), w("fp64 grad-forward"), w("fp64 backward"),
        "passed" if gc and all(x["ok"] for x in gc) else "FAILED/missing"))
for f in failures:
    print("FAIL", f)
EOF
ls "$MOD"/ref/*.json | sed 's|.*/||; s|.json||' | while read -r m; do [ -f "/tmp/check-$m.json" ] || el "check $m did not finish: $(tail -2 /tmp/check-$m.log | tr '\n' ' ')"; done
el "phase 1 done (checks, precompile)"

# phase 2: the timed process
timeout "${BENCH_S:-100}" python3 bench/torch/train_bench.py "$MOD" --models "$MODELS" ${CASES:+--cases "$CASES"} ${STEP_MS:+--step-ms "$STEP_MS"} ${CELL_VARIANTS:+--cell-variants "$CELL_VARIANTS"} ${PASS_WAYS:+--pass-ways "$PASS_WAYS"} ${PROFILE:+--profile} --out "$OUT/train-bench.json" --budget "${BUDGET:-80}" 2>&1 | tee -a "$LOG"
el "bench exit ${PIPESTATUS[0]}"
