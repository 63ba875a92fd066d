#!/usr/bin/env bash
# Run 28's plans (bench/cuda/chunked/run28.sh): Simple GLA only, the bf16 K = 128 variants that can take
# (4, 8192, 16, 128) (issue 5's miss in run 27): auto's split-v64 and 13 candidates among the existing variants (split
# over 64 / 32 / 16 values, split's 512-thread walks, splitd, split3 and grouped split3 -g2t / -g4t, fused). Built in a
# clean worktree of a commit (REV, default HEAD) so that no uncommitted edit enters.
#   here:   bash bench/cuda/chunked/build-run28.sh   -> dist/chunked-plans-run28, dist/chunked-check-run28.mjs
set -euo pipefail
RUN=${RUN:-28}
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run$RUN-XXXX)
git worktree add -q --detach "$WT/wt" "${REV:-HEAD}"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
mkdir -p "$ROOT/dist" && git rev-parse HEAD > "$ROOT/dist/chunked-run$RUN.rev"
export SEQC_PLANS=$ROOT/dist/chunked-plans-run$RUN
rm -rf "$SEQC_PLANS"
SEQC_BUILD_MODELS=simple_gla SEQC_BUILD_VARIANTS='^chunked-(split-bf16-k128-v(64|32)(-w512)?|split-bf16-k128-v16|splitd-bf16-k128-v(64|32)|split3-bf16-k128-v(64|32)(-g2t)?|split3-bf16-k128-v32-g4t|fused-bf16-k128-v(64|32))-r1$' \
  npx tsx bench/cuda/chunked/build.ts
grep -h -A2 "Function properties for " "$SEQC_PLANS"/*.resources.txt 2>/dev/null | grep -v "^--" | paste - - - | sed -E 's/ptxas info *: //g; s/Function properties for seqc_//; s/ +/ /g' | grep -i spill | grep -v " 0 bytes spill" || echo "no spills reported"
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run$RUN.mjs --log-level=warning
ls "$SEQC_PLANS"
du -sh $SEQC_PLANS $ROOT/dist/chunked-check-run$RUN.mjs
