#!/usr/bin/env bash
# Run 20's plans (bench/cuda/chunked/run20.sh), each built in a clean worktree of a commit so that no uncommitted edit
# enters. REV (default HEAD) -> dist/chunked-plans-run20 and dist/chunked-check-run20.mjs: the grouped split3 readouts'
# picks at (1, 32768) (Simple GLA, GLA, Mamba-2: -g4t), the delta rule's (8, 2048, 16, 64) picks beside phase A on 512
# threads (-a512, -a512-iw, -a512-mw) and 384 (RWKV-7's -a384-mw). OLD=<rev> -> dist/chunked-plans-run20old: the grouped
# picks only, at the commit before the readouts' shared helpers (the old text).
#   here:   bash bench/cuda/chunked/build-run20.sh && OLD=52671f6^ bash bench/cuda/chunked/build-run20.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
REV=${OLD:-${REV:-HEAD}}
SUF=${OLD:+old}
WT=$(mktemp -d /tmp/seqc-run20-XXXX)
git worktree add -q --detach "$WT/wt" "$REV"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
export SEQC_PLANS=$ROOT/dist/chunked-plans-run20$SUF
rm -rf "$SEQC_PLANS"
SEQC_BUILD_MODELS=simple_gla,gla,mamba2 SEQC_BUILD_VARIANTS='^chunked-(split3-bf16-k128-v32-g4t|split3-bf16-k128-v32-a512-mw-g4t|split3-bf16-k64-v64-g4t)-r1$' \
  npx tsx bench/cuda/chunked/build.ts
if [ -z "$SUF" ]; then
  SEQC_BUILD_MODELS=deltanet,gated_deltanet,rwkv7 SEQC_BUILD_VARIANTS='^chunked-split-bf16-k64-v32(-a384-iw|-a512-iw|-mw|-a384-mw|-a512-mw)-r[12]$' \
    npx tsx bench/cuda/chunked/build.ts
  banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
  npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
    --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run20.mjs --log-level=warning
fi
du -sh $SEQC_PLANS
