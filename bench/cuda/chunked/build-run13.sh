#!/usr/bin/env bash
# Run 13's plans (bench/cuda/chunked/run13.sh): the low-rank phase A with the inverse by warp products (-iw) and
# phase A with 384 threads at K = 64, beside the variants auto picks at the seven cases that missed 2x in run 12,
# and four ablation builds of the same phase A kernels (bench/cuda/chunked/run13-phase-a-ablation.patch applied to a
# worktree of HEAD: SEQC_ABL = 1 returns after the loads, 2 after A and Aq, 3 after the inverse, 4 before the record).
#   here:   bash bench/cuda/chunked/build-run13.sh && RUN=13 bash bench/cuda/chunked/bundle-run9.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
export SEQC_BUILD_MODELS=deltanet,gated_deltanet,gla,rwkv7
V='^chunked-split-bf16-k64-v32(-a384)?(-iw)?-r[12]$|^chunked-split-bf16-k128-v64-a(384|512)(-iw)?-r[12]$|^chunked-split3-bf16-k128-v(8|16)-a(384|512)(-iw)?-r[12]$'
SEQC_PLANS=dist/chunked-plans-run13 SEQC_BUILD_VARIANTS="$V" npx tsx bench/cuda/chunked/build.ts
WT=$(mktemp -d /tmp/seqc-run13-XXXX)
git worktree add -q "$WT/wt" HEAD
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
( cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules && git apply "$ROOT/bench/cuda/chunked/run13-phase-a-ablation.patch"
  A='^chunked-split-bf16-k64-v32(-iw)?-r[12]$|^chunked-split-bf16-k128-v64-a(384|512)(-iw)?-r[12]$|^chunked-split3-bf16-k128-v(8|16)-a(384|512)(-iw)?-r[12]$'
  for n in 1 2 3 4; do
    SEQC_NVCC_FLAGS="-DSEQC_ABL=$n" SEQC_PLANS=$ROOT/dist/chunked-plans-run13-abl$n SEQC_BUILD_VARIANTS="$A" npx tsx bench/cuda/chunked/build.ts
  done )
du -sh dist/chunked-plans-run13*
