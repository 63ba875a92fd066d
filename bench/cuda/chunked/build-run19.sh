#!/usr/bin/env bash
# Run 19's plans (bench/cuda/chunked/run9.sh with RUN=19), built in a clean worktree of HEAD so that no uncommitted edit
# enters: Simple GLA's candidates at (4, 8192, 16, 128) (split / splitd / split3 / grouped split3 -g2t, -g4t over 32- and
# 64-value walks, split's walk on 512 threads -w512) beside its three picks; DeltaNet's and Gated DeltaNet's picks beside
# split3's 8- and 16-value walks with Z = U0 + M S0 over every warp (-wk split-K, -wc copies on the idle warps, -wk-w512
# split-K over 16 warps) and split's 512-thread walk.
#   here:   bash bench/cuda/chunked/build-run19.sh    (dist/chunked-plans-run19, dist/chunked-check-run19.mjs)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run19-XXXX)
git worktree add -q "$WT/wt" HEAD
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
export SEQC_PLANS=$ROOT/dist/chunked-plans-run19
rm -rf "$SEQC_PLANS"
SEQC_BUILD_MODELS=simple_gla SEQC_BUILD_VARIANTS='^chunked-(splitd-bf16-k64-v32|split-bf16-k128-v(64|32)(-w512)?|splitd-bf16-k128-v64|split3-bf16-k128-v(64|32)(-g[24]t)?)-r1$' \
  npx tsx bench/cuda/chunked/build.ts
SEQC_BUILD_MODELS=deltanet,gated_deltanet SEQC_BUILD_VARIANTS='^chunked-(split-bf16-k64-v32-a384-iw|split-bf16-k128-v64-a384-iw(-w512)?|split3-bf16-k128-v(8|16)-a384-iw(-wk|-wc|-wk-w512)?)-r1$' \
  npx tsx bench/cuda/chunked/build.ts
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run19.mjs --log-level=warning
du -sh $SEQC_PLANS $ROOT/dist/chunked-check-run19.mjs
