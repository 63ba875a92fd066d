#!/bin/bash
# One card call for RWKV-7's per-key adjoint's factored twin (session 15 task D; seqc_delta_bwd KEY_MMA "bf16f":
# compiler/backends/cuda/delta-adjoint-key-mma.ts DELTA_ADJ_KEY_FAC_CONFIGS, and the K = 128 one built in for this call):
# 1) the launches of one step a shape (T = 1024) with KEY_MMA "bf16" and "bf16f", while workers precompile fla;
# 2) key_fac_kernel_bench.py: the adjoint alone, bf16 twin vs factored twin, RWKV-7's decays and a fallback range;
# 3) rwkv7_key_fac_bench.py: RWKV-7's bf16 step, defaults vs KEY_MMA "bf16f", GPU ms under CUDA graphs and eager, fla's
#    chunk_rwkv7 beside, gradients vs float64 at 2x1024, an eager profile of the factored way a shape.
# Prepared here (git-ignored): the module from a clean export of HEAD plus this change with bench/torch/build-chunked.ts
# (rwkv7), bench/torch/*.py and this script beside it (MOD/bench), `tar -C dist -czf dist/<name>.tgz <name>`.
# Device: carry=["dist/<name>.tgz", ".anchors"], command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MOD=dist/<name> OUT=$OUT bash dist/<name>/bench/rwkv7-key-fac-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-key-fac-out}
MOD=${MOD:-dist/torch-s15d}
BENCH=$MOD/bench
mkdir -p "$OUT/profile" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt" | tee -a "$LOG"
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1 | tee -a "$OUT/card.txt"
export PYTHONPATH=$PWD/.anchors
SHAPES=${SHAPES:-8x2048x16x64,4x8192x16x128,1x32768x8x128}
PIDS=()
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-45}" python3 "$BENCH/lowrank_bench.py" "$MOD" --models rwkv7 --shapes "$SHAPES" --warm-fla "$i" "$W" --fla-max-configs 4 > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${WAYS_S:-30}" python3 - "$MOD" "$SHAPES" > "$OUT/ways.log" 2>&1 <<'PY'
import os, sys
root = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(root, "bench"))
sys.path.insert(0, root)
import torch
import rwkv7_key_fac_bench  # noqa: F401  (its configs into lowrank_bench)
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
for B, T, H, K in lb.parse_shapes(sys.argv[2]):
    x = lb.inputs("rwkv7", B, 1024, H, K, 3)
    cot = torch.randn(B, 1024, H, K, device=lb.DEV)
    for label, dt, sets in lb.CONFIGS[22][:2]:
        seen.clear()
        try:
            with lb.switches(sets):
                one, _ = lb.seqc_step(sm, {k: v.to(dt) for k, v in x.items()}, cot)
                one()
                torch.cuda.synchronize()
            print("ways rwkv7 (%d, T, %d, %d) %-14s %s" % (B, H, K, label, ", ".join(s for s in seen if "_adj_" in s) or "no adjoint kernel"))
        except Exception as e:  # noqa: BLE001
            print("ways rwkv7 (%d, T, %d, %d) %-14s ERROR %s: %s" % (B, H, K, label, type(e).__name__, str(e)[:300]))
PY
tail -6 "$OUT/ways.log" | tee -a "$LOG"
el "ways done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
el "warm done"
timeout "${KERNEL_S:-30}" python3 "$BENCH/key_fac_kernel_bench.py" "$MOD" --shapes 8x2048x16x64,4x8192x16x128 --out "$OUT/kernel.json" > "$OUT/kernel.log" 2>&1
el "kernel bench exit $?"
tail -6 "$OUT/kernel.log" | tee -a "$LOG"
timeout "${TIME_S:-75}" python3 "$BENCH/rwkv7_key_fac_bench.py" "$MOD" --models rwkv7 --shapes "$SHAPES" --variants 22 \
  --reps "${REPS:-10}" --budget "${BUDGET:-55}" --fla-max-configs 4 --accuracy 2x1024 --profile "$OUT/profile" --out "$OUT/step.json" > "$OUT/step.log" 2>&1
el "step bench exit $?"
tail -22 "$OUT/step.log" | tee -a "$LOG"
