#!/bin/bash
# One card call for RWKV-7 through the delta backward at K = 128 (session 14, task D: the per-key adjoint's K = 128 TF32
# twin, compiler/backends/cuda/delta-adjoint-key-mma-k128.ts), bf16, fla's chunk_rwkv7 beside:
# 1) which way the backward took and which deltaBwd kernels it launched, defaults and the chain, one step at T = 1024
#    with each shape's B, H, K;
# 2) rwkv7_k128_bench.py (lowrank_bench.py --variants 22 with its own configs): "bf16 chain" (LR_BWD "wy", LR_BWD_KEY
#    "chain", K = 128 only: what "auto" took there before) and "bf16 delta twins" (the defaults), GPU ms under CUDA
#    graphs and eager, accuracy at 2x1024 vs float64 at K = 128, eager profiles a shape, while workers precompile fla first.
# Prepared here (git-ignored): the module from a clean export of HEAD with bench/torch/build-chunked.ts (rwkv7),
# bench/torch/*.py and this script packed beside it (MOD/bench), then `tar -C dist -czf dist/<name>.tgz <name>`.
# Device: carry=["dist/<name>.tgz", ".anchors"], command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MOD=dist/<name> OUT=$OUT bash dist/<name>/bench/rwkv7-k128-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-rwkv7-k128-out}
MOD=${MOD:-dist/torch-d14}
BENCH=$MOD/bench
mkdir -p "$OUT/profile" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt" | tee -a "$LOG"
export PYTHONPATH=$PWD/.anchors
SHAPES=${SHAPES:-4x8192x16x128,1x32768x8x128,8x2048x16x64}
PIDS=()
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-60}" python3 "$BENCH/lowrank_bench.py" "$MOD" --models rwkv7 --shapes "$SHAPES" --warm-fla "$i" "$W" --fla-max-configs 4 > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${WAYS_S:-45}" python3 - "$MOD" "$SHAPES" > "$OUT/ways.log" 2>&1 <<'PY'
import os, sys
root = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(root, "bench"))
sys.path.insert(0, root)
import torch
import rwkv7_k128_bench  # noqa: F401  (its configs into lowrank_bench)
import lowrank_bench as lb
import seqc_chunked_lowrank as lr
seen = []
real = lr._delta.kernel_launch
def counted_launch(km, *a, **k):
    class Km:
        kernels = km.kernels
        @staticmethod
        def launch(rec, grid, args, stream):
            seen.append("%s grid %s" % (rec["entry"], tuple(grid)))
            return km.launch(rec, grid, args, stream)
    return real(Km, *a, **k)
lr._delta.kernel_launch = counted_launch
sm = lb.seqc_model(root, "rwkv7", "chunked")
sm.graphs = False
print(torch.cuda.get_device_name(0), "torch", torch.__version__)
for B, T, H, K in lb.parse_shapes(sys.argv[2]):
    x = lb.inputs("rwkv7", B, 1024, H, K, 3)
    cot = torch.randn(B, 1024, H, K, device=lb.DEV)
    for label, dt, sets in lb.CONFIGS[22]:
        seen.clear()
        try:
            with lb.switches(sets):
                one, _ = lb.seqc_step(sm, {k: v.to(dt) for k, v in x.items()}, cot)
                one()
                torch.cuda.synchronize()
            print("ways rwkv7 (%d, T, %d, %d) %-18s %s" % (B, H, K, label, ", ".join(seen) or "no deltaBwd kernel"))
        except Exception as e:  # noqa: BLE001
            print("ways rwkv7 (%d, T, %d, %d) %-18s ERROR %s: %s" % (B, H, K, label, type(e).__name__, str(e)[:300]))
PY
tail -8 "$OUT/ways.log" | tee -a "$LOG"
el "ways done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
el "warm done"
timeout "${TIME_S:-130}" python3 "$BENCH/rwkv7_k128_bench.py" "$MOD" --models rwkv7 --shapes "$SHAPES" --variants 22 \
  --reps "${REPS:-10}" --budget "${BUDGET:-95}" --fla-max-configs 4 --accuracy 2x1024 --profile "$OUT/profile" --out "$OUT/k128.json" > "$OUT/k128.log" 2>&1
el "rwkv7_k128_bench exit $?"
tail -24 "$OUT/k128.log" | tee -a "$LOG"
