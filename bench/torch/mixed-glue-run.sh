#!/bin/bash
# One GPU call for the chunked backward's glue (issue 6; runtime/torch/seqc_chunked.py REVERSE_SUM, REVERSE_GLUE): the
# decay adjoint's reverse sums per chunk as products with a triangular ones matrix instead of torch.flip + a cumsum over
# T + torch.flip, the decays reversed by one gather, and the adjoint cores' reversed inputs reversed from their bf16
# copies. bench/torch/mixed_bench.py for simple_gla, mamba2 and gla in one process:
#   --accuracy-only (bf16 gradients vs seqc's float64 kernels at the reference cases and B=2 T=2048; paths "old" = the
#     default before, "new" = the default now, "new-lean" / "new-cumsum"; limit 1e-2) while workers precompile the
#     anchors' Triton kernels, then
#   --timing-only (the bf16 steps with CUDA graphs at (8, 2048, 16, 64) (Mamba-2 32 heads), the paths side by side in
#     two interleaved rounds, fla / mamba_ssm beside; one eager bf16 step per model and PROFILE_PATHS under the torch
#     profiler: $OUT/profile-<model>-<path>.txt).
# Prepared here (git-ignored): dist/torch-glue = the modules and refs of build-chunked.ts (SimpleGla, Mamba2, Gla), the
# runtime files of HEAD (git show HEAD:runtime/torch/seqc_*.py), packed as dist/torch-glue.tgz (tar -C dist -czf
# dist/torch-glue.tgz torch-glue: the json modules compress ~2.7x, the working tree + carry must stay under 64 MiB).
# The modules must be built at the runtime's commit: run 1's Gla module (dist/torch-rows, built at 5fa88fb) had the
# older rows readout kernel (a `seg` argument) and every GLA launch failed. Build from a clean export of HEAD:
#   git archive HEAD | tar -x -C /tmp/clean && ln -s $PWD/node_modules /tmp/clean/ &&
#   (cd /tmp/clean && npx tsx bench/torch/build-chunked.ts $OLDPWD/dist/torch-glue simple_gla,mamba2,gla $OLDPWD/dist/torch-chunked-g)
# Device: run  command="mkdir -p dist && tar -C dist -xzf dist/torch-glue.tgz && timeout 160 bash bench/torch/mixed-glue-run.sh"
#   carry=["dist/torch-glue.tgz", ".anchors", ".whl"]   (MODELS=gla ... for GLA alone)
# Run s8 (bench/RESULTS.md "The bf16 step's reversals on 8-byte words"): MODULES=dist/torch-s8 ACC_PATHS=s8-old,s8-new
#   TIME_PATHS=s8-old,s8-flip,s8-read,s8-new PROFILE_PATHS=s8-old,s8-new (carry dist/torch-s8.tgz, .anchors, .whl).
# Run s9 (bench/RESULTS.md "row sums split over a warp"): MODULES=dist/torch-s9 MODELS=mamba2,simple_gla
#   ACC_PATHS=s9-old,s9-new TIME_PATHS=s9-old,s9-new PROFILE_PATHS=s9-old,s9-new WARM_S=40 ACC_S=35 TIME_S=62 (85.6 s;
#   carry dist/torch-s9.tgz, .anchors, .whl; no .device: the script needs the device's python alone).
# Run s10 (H200; bench/RESULTS.md "The bf16 step's copies and conversions"): MODULES=dist/torch-s10
#   ACC_PATHS=s10-old,s10-new TIME_PATHS=s10-old,s10-conv,s10-new PROFILE_PATHS=s10-new,s10-old (carry dist/torch-s10.tgz,
#   .anchors, .whl); the profiles also list the copies, conversions and flips by the glue function that made them.
# Run s11 (H200; bench/RESULTS.md "the anchors' chunk products as one CUDA kernel"): MODULES=dist/torch-s11
#   ACC_PATHS=s11-old,s11-new TIME_PATHS=s11-old,s11-new PROFILE_PATHS=s11-new,s11-old (carry dist/torch-s11.tgz,
#   .anchors, .whl).
# Run s12 (H200; bench/RESULTS.md "SimpleGLA's bf16 step past fla"):
#   MODULES=dist/torch-s12c ACC_PATHS=s12-new TIME_PATHS=s12-old,s12-terms,s12-vec,s12-sum,s12-gram,s12-new
#   PROFILE_PATHS=s12-new,s12-old (carry dist/torch-s12c.tgz, .anchors, .whl). (Unset, PROFILE_PATHS is "new,old": paths
#   of the first glue runs, not the defaults of today; name the paths. Set empty, no profile: run s11 2's empty value fell
#   back to "new,old" before.)
# Run s13 (H200; the same section): MODULES=dist/torch-s13c ACC_PATHS=s13-new TIME_PATHS=s12-old,s13-old,s13-groups,s13-rows4,s13-new
#   PROFILE_PATHS=s13-new (carry dist/torch-s13c.tgz, .anchors, .whl; s13-rows4 / s13-new had a TERMS_ROWS switch not kept:
#   rerun with TIME_PATHS=s12-old,s13-old,s13-groups); BUNDLE=1 packs $OUT's logs into one tgz (the device tool returns a
#   limited number of files: run s12 1 lost its timing log).
# Run s14 (H200; bench/RESULTS.md "Mamba-2's stateless parts without their zeros"): MODULES=dist/torch-s14f
#   MODELS=mamba2,simple_gla ACC_PATHS=s14-zeros TIME_PATHS=s14-old,s14-zeros PROFILE_PATHS=s14-zeros BUNDLE=1
#   (carry dist/torch-s14f.tgz, .anchors, .whl).
# Run s15 (H200; bench/RESULTS.md "Mamba-2's stateless parts row by row"): MODULES=dist/torch-s15d MODELS=mamba2,simple_gla
#   ACC_PATHS=s15-new TIME_PATHS=s15-old,s15-rows,s15-graph,s15-new PROFILE_PATHS=s15-new,s15-old BUNDLE=1 (carry
#   dist/torch-s15d.tgz holding the modules and a clean export's bench/torch files, copied over bench/torch first).
# Run c15 1 (H200; bench/RESULTS.md "GLA's transposed cores in the chunked form"): MODULES=dist/torch-c15 MODELS=gla,simple_gla
#   ACC_PATHS=c15-chunk TIME_PATHS=c15-noterms,c15-walk,c15-chunk,c15-chunk8 PROFILE_PATHS=c15-chunk,c15-walk BUNDLE=1
#   WARM_S=50 ACC_S=50 TIME_S=120 (carry dist/torch-c15.tgz, .anchors, .whl; 57 s).
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-glue-out}
MOD=${MODULES:-dist/torch-glue}
MODELS=${MODELS:-simple_gla,mamba2,gla}
export ACC_PATHS=${ACC_PATHS:-old,new,new-lean} TIME_PATHS=${TIME_PATHS:-old,new,new-lean,new-cumsum} PROFILE_PATHS=${PROFILE_PATHS-new,old}
export ANCHOR_COST=0 PROFILE_DIR="$OUT"
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
LOG="$OUT/run.log"
T0=$(date +%s)
el() { echo "t=$(( $(date +%s) - T0 ))s $*" | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=$PWD/.anchors:/tmp/site
grep -E '^(REVERSE_SUM|REVERSE_CHUNK|REVERSE_GLUE|DECAY_ANCHOR[A-Z_]*|TRANSPOSED_IO|GLUE_COPIES|STATELESS_IO|ALIAS_IO|FLIP_VIEW|ROWS_IO|PREP_IO|PART_INPUTS|STATELESS_WARP|IDLE_INPUTS|ADJOINT_OUT|RUN_COPIES|CORE_RERUN|ANCHOR_CHUNKS|ANCHOR_VEC|DECAY_TERMS|GRAD_SUM|GRAM_PRODUCTS|ZERO_STORES|ROWS_FORM|ROWS_CHUNK_WARPS) = ' "$MOD/seqc_chunked.py" | tee -a "$LOG"
PIDS=()
W=${WARM_WORKERS:-6}
for i in $(seq 0 $((W - 1))); do
  timeout "${WARM_S:-55}" python3 bench/torch/chunked_bench.py "$MOD" --models "$MODELS" --warm-fla "$i" "$W" > "/tmp/warm$i.log" 2>&1 &
  PIDS+=($!)
done
timeout "${ACC_S:-50}" python3 bench/torch/mixed_bench.py "$MOD" --models "$MODELS" --accuracy-only --out "$OUT/accuracy.json" > "$OUT/accuracy.log" 2>&1
grep -E "large|FAIL|rror" "$OUT/accuracy.log" | grep -v "^\[" | cut -c1-200 | tee -a "$LOG"
el "accuracy done"
for p in "${PIDS[@]}"; do wait "$p"; done
cat /tmp/warm[0-9]*.log > "$OUT/warm.log"
el "warm done"
timeout "${TIME_S:-100}" python3 bench/torch/mixed_bench.py "$MOD" --models "$MODELS" --timing-only --out "$OUT/timing.json" > "$OUT/timing.log" 2>&1
el "timing exit $?"
grep -E "round|anchor \(|grads vs|profile|rror" "$OUT/timing.log" | cut -c1-260 | tee -a "$LOG"
sed -n '/^ms, /,$p' "$OUT/timing.log" | tee -a "$LOG"
if [ "${BUNDLE:-0}" = "1" ]; then
  (cd "$OUT" && tar -czf logs.tgz run.log timing.log timing.json warm.log accuracy.log accuracy.json 2>/dev/null; rm -f run.log timing.log timing.json warm.log accuracy.log accuracy.json)
fi
