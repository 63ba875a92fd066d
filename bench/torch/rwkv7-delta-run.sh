#!/bin/bash
# One card call for RWKV-7's per-key decay through the token-aligned delta backward (LR_BWD "delta", the deltaBwd
# module's mode "key" kernels, de8cf61 / 9b64e87 / f141168) against the adjoint chain (what "auto" takes for a per-key
# decay before this), bf16 and fp32, fla chunk_rwkv7 beside:
# 1) which way each config's backward took (delta kernels / delta torch ops / neither), one step at (2, 1024);
# 2) lowrank_bench.py --models rwkv7 --variants 22: GPU ms under CUDA graphs and eager, accuracy at 2x1024 vs float64,
#    eager profiles of the chain's and the delta twins' steps, while workers precompile fla's Triton kernels first.
# Prepared here (git-ignored): the module from a clean export of HEAD with bench/torch/build-chunked.ts, bench/torch/*.py
# and this script packed beside it (MOD/bench), then `tar -C dist -czf dist/<name>.tgz <name>`.
# Device: carry=["dist/<name>.tgz", ".anchors"], command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MOD=dist/<name> OUT=$OUT bash dist/<name>/bench/rwkv7-delta-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-rwkv7-delta-out}
MOD=${MOD:-dist/torch-a13r}
BENCH=$MOD/bench
mkdir -p "$OUT/profile" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt" | tee -a "$LOG"
export PYTHONPATH=$PWD/.anchors
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1 | tee -a "$LOG"
SHAPES=${SHAPES:-8x2048x16x64}
PIDS=()
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-60}" python3 "$BENCH/lowrank_bench.py" "$MOD" --models rwkv7 --shapes "$SHAPES" --warm-fla "$i" "$W" --fla-max-configs 4 > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${WAYS_S:-60}" python3 - "$MOD" > "$OUT/ways.log" 2>&1 <<'PY'
import os, sys
root = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(root, "bench"))
import torch
import lowrank_bench as lb
sm = lb.seqc_model(root, "rwkv7", "chunked")
sm.graphs = False
import seqc_chunked_lowrank as lr
ways = {}
kern, tor, tork = lr._delta.delta_kernels, lr._delta.delta_torch, lr._delta.delta_torch_key
def counted_kernels(*a, **k):
    r = kern(*a, **k)
    ways["kernels" if r is not None else "kernels declined"] = ways.get("kernels" if r is not None else "kernels declined", 0) + 1
    return r
def counted_torch(*a, **k):
    ways["torch"] = ways.get("torch", 0) + 1
    return tor(*a, **k)
def counted_torch_key(*a, **k):
    ways["torch key"] = ways.get("torch key", 0) + 1
    return tork(*a, **k)
lr._delta.delta_kernels, lr._delta.delta_torch, lr._delta.delta_torch_key = counted_kernels, counted_torch, counted_torch_key
x = lb.inputs("rwkv7", 2, 1024, 16, 64, 3)
cot = torch.randn(2, 1024, 16, 64, device=lb.DEV)
for label, dt, sets in lb.CONFIGS22:
    ways.clear()
    try:
        with lb.switches(sets):
            one, _ = lb.seqc_step(sm, {k: v.to(dt) for k, v in x.items()}, cot)
            one()
            torch.cuda.synchronize()
        print("ways %-20s %s" % (label, dict(ways) or "no delta backward"))
    except Exception as e:  # noqa: BLE001
        print("ways %-20s ERROR %s: %s" % (label, type(e).__name__, str(e)[:300]))
PY
cat "$OUT/ways.log" | tail -12 | tee -a "$LOG"
el "ways done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
el "warm done"
timeout "${TIME_S:-150}" python3 "$BENCH/lowrank_bench.py" "$MOD" --models rwkv7 --shapes "$SHAPES" --variants 22 \
  --reps "${REPS:-10}" --budget "${BUDGET:-120}" --fla-max-configs 4 --accuracy 2x1024 --profile "$OUT/profile" --out "$OUT/delta.json" > "$OUT/delta.log" 2>&1
el "lowrank_bench exit $?"
tail -30 "$OUT/delta.log" | tee -a "$LOG"
