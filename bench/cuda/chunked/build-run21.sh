#!/usr/bin/env bash
# Run 21's plans (bench/cuda/chunked/run21.sh), built in a clean worktree of a commit (REV, default HEAD) so that no
# uncommitted edit enters: the delta rule's (8, 2048, 16, 64) cases with auto's new phase A on 512 threads (-a512-iw,
# -a512-mw; default plans since run 21) beside the old picks (-a384-iw, RWKV-7's 256-thread -mw) and -a384-mw
#   -> dist/chunked-plans-run21 and dist/chunked-check-run21.mjs
#   here:   bash bench/cuda/chunked/build-run21.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run21-XXXX)
git worktree add -q --detach "$WT/wt" "${REV:-HEAD}"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
export SEQC_PLANS=$ROOT/dist/chunked-plans-run21
rm -rf "$SEQC_PLANS"
SEQC_BUILD_MODELS=deltanet,gated_deltanet,rwkv7 SEQC_BUILD_VARIANTS='^chunked-split-bf16-k64-v32(-a384-iw|-a512-iw|-mw|-a384-mw|-a512-mw)-r[12]$' \
  npx tsx bench/cuda/chunked/build.ts
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run21.mjs --log-level=warning
du -sh $SEQC_PLANS
