#!/bin/bash
# One card call for HEAD's defaults in the delta family (no switch set: LR_BWD "auto", session 13 task D2), bf16, fla beside
# (VARIANTS: lowrank_bench.py's --variants, 23 as in D2; session 14's final call: 25, the defaults beside the new switches):
# 1) which kernels each case's backward launched under the defaults (and "wy" at the few-rows shape): one step at
#    T = 1024 with the case's B, H, K (the walk's pick depends on B H and V, not T), the deltaBwd entries and grids;
# 2) lowrank_bench.py --variants 23: DeltaNet, Gated DeltaNet, RWKV-7 at (8, 2048, 16, 64); DeltaNet and Gated DeltaNet
#    at (1, 32768, 8, 128) (B H = 8: the few-rows walk) with "wy" beside, and (4, 8192, 16, 128); GPU ms under CUDA
#    graphs and eager, accuracy at 2x1024 vs float64 (bf16 and fp32 defaults, "wy", fla), eager profiles (DeltaNet),
#    while workers precompile fla's Triton kernels first.
# Prepared here (git-ignored): the modules from a clean export of HEAD with bench/torch/build-chunked.ts (deltanet,
# gated_deltanet, rwkv7), bench/torch/*.py and this script packed beside them (MOD/bench), then
# `tar -C dist -czf dist/<name>.tgz <name>`.
# Device: carry=["dist/<name>.tgz", ".anchors"], command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MOD=dist/<name> OUT=$OUT bash dist/<name>/bench/delta-defaults-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-delta-defaults-out}
MOD=${MOD:-dist/torch-d2}
BENCH=$MOD/bench
mkdir -p "$OUT/profile" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt" | tee -a "$LOG"
export PYTHONPATH=$PWD/.anchors
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1 | tee -a "$LOG"
SHAPES=${SHAPES:-8x2048x16x64,1x32768x8x128,4x8192x16x128}
SKIP=${SKIP:-rwkv7@1x32768x8x128,rwkv7@4x8192x16x128}
VARIANTS=${VARIANTS:-23}
PIDS=()
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-75}" bash -c "python3 $BENCH/lowrank_bench.py $MOD --models deltanet --shapes $SHAPES --warm-fla $i $W --fla-max-configs 4;
    python3 $BENCH/lowrank_bench.py $MOD --models rwkv7 --shapes ${RWKV_WARM:-8x2048x16x64} --warm-fla $i $W --fla-max-configs 4" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${WAYS_S:-60}" python3 - "$MOD" "$SHAPES" "$SKIP" "$VARIANTS" > "$OUT/ways.log" 2>&1 <<'PY'
import os, sys
root = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(root, "bench"))
sys.path.insert(0, root)  # the runtime sits beside the modules (call D2 imported it before this line was here and failed)
import torch
import lowrank_bench as lb
import seqc_chunked_lowrank as lr
shapes = lb.parse_shapes(sys.argv[2])
skip = set(sys.argv[3].split(","))
variants = int(sys.argv[4])
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
kern, tor, tork = lr._delta.delta_kernels, lr._delta.delta_torch, lr._delta.delta_torch_key
ways = {}
def count(name):
    ways[name] = ways.get(name, 0) + 1
def counted_kernels(*a, **k):
    r = kern(*a, **k)
    count("kernels" if r is not None else "kernels declined")
    return r
def counted_torch(*a, **k):
    count("torch")
    return tor(*a, **k)
def counted_torch_key(*a, **k):
    count("torch key")
    return tork(*a, **k)
lr._delta.delta_kernels, lr._delta.delta_torch, lr._delta.delta_torch_key = counted_kernels, counted_torch, counted_torch_key
for model in ("deltanet", "gated_deltanet", "rwkv7"):
    sm = lb.seqc_model(root, model, "chunked")
    sm.graphs = False
    for B, T, H, K in shapes:
        if "%s@%dx%dx%dx%d" % (model, B, T, H, K) in skip:
            continue
        x = lb.inputs(model, B, 1024, H, K, 3)
        cot = torch.randn(B, 1024, H, K, device=lb.DEV)
        for label, dt, sets in lb.CONFIGS[variants]:
            at = lb.ONLY_AT.get(variants, {}).get(label)
            if at is not None and (B, T, H, K) not in at:
                continue
            ways.clear()
            seen.clear()
            try:
                with lb.switches(sets):
                    one, _ = lb.seqc_step(sm, {k: v.to(dt) for k, v in x.items()}, cot)
                    one()
                    torch.cuda.synchronize()
                print("ways %s (%d, T, %d, %d) %-14s %s; %s" % (model, B, H, K, label, dict(ways) or "no delta backward", ", ".join(seen) or "no deltaBwd kernel"))
            except Exception as e:  # noqa: BLE001
                print("ways %s (%d, T, %d, %d) %-14s ERROR %s: %s" % (model, B, H, K, label, type(e).__name__, str(e)[:300]))
    del sm
PY
tail -12 "$OUT/ways.log" | tee -a "$LOG"
el "ways done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
el "warm done"
timeout "${TIME_S:-200}" python3 "$BENCH/lowrank_bench.py" "$MOD" --models deltanet,gated_deltanet,rwkv7 --shapes "$SHAPES" --skip "$SKIP" --variants "$VARIANTS" \
  --reps "${REPS:-10}" --budget "${BUDGET:-150}" --fla-max-configs 4 --accuracy 2x1024 --profile "$OUT/profile" --out "$OUT/delta.json" > "$OUT/delta.log" 2>&1
el "lowrank_bench exit $?"
tail -24 "$OUT/delta.log" | tee -a "$LOG"
