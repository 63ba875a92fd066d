#!/usr/bin/env bash
# Run 25's plans (bench/cuda/chunked/run25.sh): DeltaNet and Gated DeltaNet at (4, 8192, 16, 128) with split's 64-value
# 512-thread walk after phase A on 384 threads (run 23b's pick, -a384-iw-w512) and on 512 threads (auto's since this
# commit, -a512-iw-w512), and the walk that forms the readout's Q~ S0 beside Z (-a512-iw-wq-w512, chunked-walk-q.ts; on
# request). Built in a clean worktree of a commit (REV, default HEAD) so that no uncommitted edit enters.
#   here:   bash bench/cuda/chunked/build-run25.sh   -> dist/chunked-plans-run25, dist/chunked-check-run25.mjs
set -euo pipefail
RUN=${RUN:-25}
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run25-XXXX)
git worktree add -q --detach "$WT/wt" "${REV:-HEAD}"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
mkdir -p "$ROOT/dist" && git rev-parse HEAD > "$ROOT/dist/chunked-run$RUN.rev"
export SEQC_PLANS=$ROOT/dist/chunked-plans-run$RUN
rm -rf "$SEQC_PLANS"
SEQC_BUILD_MODELS=deltanet,gated_deltanet SEQC_BUILD_VARIANTS='^chunked-split-bf16-k128-v64-a(384|512)-iw(-wq)?-w512-r1$' \
  npx tsx bench/cuda/chunked/build.ts
grep -h -A2 "Function properties for .*walk" "$SEQC_PLANS"/*.resources.txt | grep -v "^--" | paste - - - | sed -E 's/ptxas info *: //g; s/Function properties for seqc_//; s/ +/ /g' || true
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run$RUN.mjs --log-level=warning
du -sh $SEQC_PLANS $ROOT/dist/chunked-check-run$RUN.mjs
