#!/bin/bash
# One card call for LR_FWD_STATES (session 14 task G: the forward keeps its chunk start states, the delta backward forms
# R = X + M S0 per chunk instead of its forward walk), bf16, fla beside:
# 1) the ways at each case's real shape, one eager step each with LR_FWD_STATES "on": the forward variant the switch took
#    (seqc_chunked_lowrank.fwd_states_form), the delta backward's launches (seqc_delta_r_* once, one walk) and the states'
#    dtype / shape; "off" beside (no r, two walks);
# 2) lowrank_bench.py --variants 24: DeltaNet and Gated DeltaNet at (8, 2048, 16, 64), (1, 32768, 8, 128) and
#    (4, 8192, 16, 128), the defaults vs LR_FWD_STATES "on", GPU ms under CUDA graphs and eager, accuracy at 2x1024 vs
#    float64 (bf16 and fp32, fla), eager profiles (DeltaNet), while workers precompile fla's Triton kernels first.
# Prepared here (git-ignored): the modules from a clean export of HEAD with bench/torch/build-chunked.ts (deltanet,
# gated_deltanet), bench/torch/*.py and this script packed beside them (MOD/bench), then
# `tar -C dist -czf dist/<name>.tgz <name>`.
# Device: carry=["dist/<name>.tgz", ".anchors"], command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MOD=dist/<name> OUT=$OUT bash dist/<name>/bench/fwd-states-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-fwd-states-out}
MOD=${MOD:-dist/torch-g}
BENCH=$MOD/bench
mkdir -p "$OUT/profile" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt" | tee -a "$LOG"
export PYTHONPATH=$PWD/.anchors
SHAPES=${SHAPES:-8x2048x16x64,1x32768x8x128,4x8192x16x128}
MODELS=${MODELS:-deltanet,gated_deltanet}
PIDS=()
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-75}" python3 $BENCH/lowrank_bench.py $MOD --models deltanet --shapes $SHAPES --warm-fla $i $W --fla-max-configs 4 > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${WAYS_S:-90}" python3 - "$MOD" "$SHAPES" "$MODELS" > "$OUT/ways.log" 2>&1 <<'PY'
import os, sys
root = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(root, "bench"))
sys.path.insert(0, root)
import torch
import lowrank_bench as lb
import seqc_chunked_lowrank as lr
seen, forms, states = [], [], []
real_launch, real_r, real_form, real_db = lr._delta.kernel_launch, lr._delta.r_launch, lr.fwd_states_form, lr._delta.delta_backward
def wrap(km):
    class Km:
        kernels = km.kernels
        @staticmethod
        def launch(rec, grid, args, stream):
            seen.append(rec["entry"])
            return km.launch(rec, grid, args, stream)
    return Km
lr._delta.kernel_launch = lambda km, *a, **k: real_launch(wrap(km), *a, **k)
lr._delta.r_launch = lambda km, *a, **k: real_r(wrap(km), *a, **k)
def form(*a, **k):
    v = real_form(*a, **k)
    forms.append(v)
    return v
lr.fwd_states_form = form
def db(*a, **k):
    s = k.get("states")
    states.append(None if s is None else "%s %s, SF %s" % (s[0].dtype, tuple(s[0].shape), tuple(s[1].shape)))
    return real_db(*a, **k)
lr._delta.delta_backward = db
for model in sys.argv[3].split(","):
    sm = lb.seqc_model(root, model, "chunked")
    sm.graphs = False
    for B, T, H, K in lb.parse_shapes(sys.argv[2]):
        x = lb.inputs(model, B, T, H, K, 3)
        cot = torch.randn(B, T, H, K, device=lb.DEV)
        for label, dt, sets in lb.CONFIGS24[:2]:
            seen.clear(); forms.clear(); states.clear()
            try:
                with lb.switches(sets):
                    one, _ = lb.seqc_step(sm, {k: v.to(dt) for k, v in x.items()}, cot)
                    one()
                    torch.cuda.synchronize()
                print("ways %s (%d, %d, %d, %d) %-16s forward %s; states %s; %s" % (model, B, T, H, K, label, forms, states, ", ".join(seen) or "no delta kernel"))
            except Exception as e:  # noqa: BLE001
                print("ways %s (%d, %d, %d, %d) %-16s ERROR %s: %s" % (model, B, T, H, K, label, type(e).__name__, str(e)[:300]))
            tb_free = getattr(lb.tb, "free_all", None)
            if tb_free:
                tb_free()
    del sm
PY
tail -14 "$OUT/ways.log" | tee -a "$LOG"
el "ways done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
el "warm done"
timeout "${TIME_S:-200}" python3 "$BENCH/lowrank_bench.py" "$MOD" --models "$MODELS" --shapes "$SHAPES" --variants 24 \
  --reps "${REPS:-10}" --budget "${BUDGET:-150}" --fla-max-configs 4 --accuracy 2x1024 --profile "$OUT/profile" --out "$OUT/delta.json" > "$OUT/delta.log" 2>&1
el "lowrank_bench exit $?"
tail -24 "$OUT/delta.log" | tee -a "$LOG"
