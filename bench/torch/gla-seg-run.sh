#!/bin/bash
# One GPU call (session 14, task A2): GLA's bf16 fwd+bwd with the rows chunk kernel's segments (seqc_chunked.ROWS_CHUNK_SEGMENTS)
# beside the defaults and fla chunk_gla at (1, 32768, 8, 128) and (4, 8192, 16, 128): bench/torch/gla_seg_bench.py (eager GPU only
# and under CUDA graphs, an eager profile of the defaults and of seg-auto at the first shape, accuracy vs float64 at 1x1024).
# Prepared here (git-ignored): the Gla module from a clean export of HEAD (build-chunked.ts, images reused), this change's
# runtime/torch/seqc_chunked.py over HEAD's runtime files, bench/torch/*.py beside them:
#   git archive HEAD | tar -x -C /tmp/a2-clean; (cd /tmp/a2-clean && npx tsx bench/torch/build-chunked.ts dist/torch-a2g gla dist/torch-head12)
#   cp runtime/torch/seqc_chunked.py dist/torch-a2g/; mkdir -p dist/torch-a2g/bench; cp bench/torch/*.py dist/torch-a2g/bench/
#   tar -C dist -czf dist/torch-a2g.tgz torch-a2g
# Device: run carry=["dist/torch-a2g.tgz", ".anchors"] command="mkdir -p dist && tar -C dist -xzf dist/torch-a2g.tgz &&
#   OUT=$OUT timeout 190 bash bench/torch/gla-seg-run.sh"
# VARIANTS (the --variant flags) and PROFILE_VARIANT override the variants (call A3: seg32 in place of seg2).
# PROFILE_CASE (BxTxHxK, default the first case), PROFILE_GRAPHS (non-empty: the graphed steps profiled too) and ACC (BxT or BxTxHxK, default 1x1024 with the first case's H, K): session 15.
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296 TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0
OUT=${OUT:-/tmp/seqc-gla-seg-out}
MOD=${MODULES:-dist/torch-a2g}
mkdir -p "$OUT" "$TRITON_CACHE_DIR"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt"
export PYTHONPATH=$PWD/.anchors
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1 | tee -a "$OUT/card.txt"
timeout "${TIME_S:-170}" python3 "$MOD/bench/gla_seg_bench.py" "$MOD" --cases "${CASES:-1x32768x8x128,4x8192x16x128}" \
  ${VARIANTS:---variant seg-auto:ROWS_CHUNK_SEGMENTS=auto --variant seg2:ROWS_CHUNK_SEGMENTS=2 --variant seg8:ROWS_CHUNK_SEGMENTS=8 \
  --variant seg8-split:ROWS_CHUNK_WIDE=split,ROWS_CHUNK_SEGMENTS=8 --variant seg16:ROWS_CHUNK_SEGMENTS=16} \
  --profile-variant "${PROFILE_VARIANT:-seg-auto}" ${PROFILE_CASE:+--profile-case $PROFILE_CASE} ${PROFILE_GRAPHS:+--profile-graphs} --accuracy "${ACC:-1x1024}" --out "$OUT/gla-seg.json" --outdir "$OUT" 2>&1 | tee "$OUT/run.txt"
echo "exit ${PIPESTATUS[0]}"
