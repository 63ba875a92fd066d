#!/bin/bash
# One card call for the token-aligned delta backward (LR_BWD "delta": runtime/torch/seqc_delta_bwd.py), DeltaNet and
# Gated DeltaNet:
# 1) bench/torch/check.py --only-chunked with LR_BWD "delta" (fp32 through the module's delta kernels where it has them,
#    fp64 through the torch ops; gradcheck), counting which way each backward took;
# 2) lowrank_bench.py --variants 20: "wy" (the default) vs "delta" by torch ops vs "delta" by the kernels, bf16 and fp32,
#    CUDA graphs and GPU-only times, fla chunk_delta_rule beside in the same process, accuracy at 2x1024 vs float64,
#    an eager profile of the delta steps (DeltaNet), while workers precompile fla's Triton kernels first.
# VARIANTS=21: the module's defaults instead (lowrank_bench.py CONFIGS21); CHECK_S=0 leaves out step 1.
# Prepared here (git-ignored): modules from a clean export of the tree with bench/torch/build-chunked.ts, the runtime and
# bench/torch/*.py packed beside them (MOD/bench), then `tar -C dist -czf dist/<name>.tgz <name>`.
# Device: carry=["dist/<name>.tgz", ".anchors"], command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MOD=dist/<name> OUT=$OUT bash dist/<name>/bench/delta-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-delta-out}
MOD=${MOD:-dist/torch-d13}
BENCH=$MOD/bench
mkdir -p "$OUT/profile" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt" | tee -a "$LOG"
export PYTHONPATH=$PWD/.anchors
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1 | tee -a "$LOG"
SHAPES=${SHAPES:-8x2048x16x64,4x8192x16x128}
PIDS=()
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-60}" python3 "$BENCH/lowrank_bench.py" "$MOD" --models deltanet --shapes "$SHAPES" --warm-fla "$i" "$W" --fla-max-configs 4 > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
[ "${CHECK_S:-60}" != 0 ] && timeout "${CHECK_S:-60}" python3 - "$MOD" "$OUT" > "$OUT/check.log" 2>&1 <<'EOF'
import os, runpy, sys
root, out = os.path.abspath(sys.argv[1]), sys.argv[2]
sys.path.insert(0, root)
import seqc_chunked_lowrank as lr
lr.LR_BWD = "delta"
ways = {"kernels": 0, "torch": 0}
kern, tor = lr._delta.delta_kernels, lr._delta.delta_torch
def counted_kernels(*a, **k):
    r = kern(*a, **k)
    ways["kernels"] += r is not None
    return r
def counted_torch(*a, **k):
    ways["torch"] += 1
    return tor(*a, **k)
lr._delta.delta_kernels, lr._delta.delta_torch = counted_kernels, counted_torch
sys.argv = ["check.py", root, "--only-chunked", "--out", out + "/check.json", "deltanet", "gated_deltanet"]
try:
    runpy.run_path(os.path.join(root, "bench", "check.py"), run_name="__main__")
except SystemExit as e:
    print("check exit", e.code)
print("delta backward ways:", ways)
EOF
[ -f "$OUT/check.log" ] && tail -25 "$OUT/check.log" | tee -a "$LOG"
el "check done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
el "warm done"
timeout "${TIME_S:-200}" python3 "$BENCH/lowrank_bench.py" "$MOD" --models deltanet,gated_deltanet --shapes "$SHAPES" --variants "${VARIANTS:-20}" \
  --reps "${REPS:-10}" --budget "${BUDGET:-170}" --fla-max-configs 4 --accuracy 2x1024 --profile "$OUT/profile" --out "$OUT/delta.json" > "$OUT/delta.log" 2>&1
el "lowrank_bench exit $?"
tail -30 "$OUT/delta.log" | tee -a "$LOG"
