#!/usr/bin/env bash
# Run 22's plans (bench/cuda/chunked/run22.sh): HEAD's auto picks at all 18 (model, shape) cases, as run 18, after
# 73fed2c (phase A keeps Q as bf16(q) with a scalar or no decay; rsqrt(K) in fp32 where Q is consumed), the readouts'
# copy helper (52671f6) and the new delta-rule picks (-a512-iw, -a384-iw-w512, -a384-iw-wc). Built in a clean worktree
# of a commit (REV, default HEAD) so that no uncommitted edit enters; only the variants auto picks, 3 per model.
#   here:   bash bench/cuda/chunked/build-run22.sh   -> dist/chunked-plans-run22, dist/chunked-check-run22.mjs
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run22-XXXX)
git worktree add -q --detach "$WT/wt" "${REV:-HEAD}"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
git rev-parse HEAD > "$ROOT/dist/chunked-run22.rev"
export SEQC_PLANS=$ROOT/dist/chunked-plans-run22
rm -rf "$SEQC_PLANS"
b() { SEQC_BUILD_MODELS=$1 SEQC_BUILD_VARIANTS="^chunked-($2)-r[12]\$" npx tsx bench/cuda/chunked/build.ts; }
b simple_gla 'splitd-bf16-k64-v32|split-bf16-k128-v64|split3-bf16-k128-v32-g4t'
b gla 'split-bf16-k64-v32-mw|split-bf16-k128-v64-a512-mw|split3-bf16-k128-v32-a512-mw-g4t'
b deltanet,gated_deltanet 'split-bf16-k64-v32-a512-iw|split-bf16-k128-v64-a384-iw-w512|split3-bf16-k128-v16-a384-iw-wc'
b rwkv7 'split-bf16-k64-v32-mw|split-bf16-k128-v64-a512-mw|split3-bf16-k128-v8-a512-mw'
b mamba2 'fused-bf16-k64-v64|splitd-bf16-k64-v32|split3-bf16-k64-v64-g4t'
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run22.mjs --log-level=warning
du -sh $SEQC_PLANS $ROOT/dist/chunked-check-run22.mjs
