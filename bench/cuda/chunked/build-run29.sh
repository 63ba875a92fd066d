#!/usr/bin/env bash
# Run 29's plans (bench/cuda/chunked/run29.sh): issue 5's two misses at (4, 8192, 16, 128). Simple GLA: auto's
# split-v64-w512, the 256-thread split-v64 before it, and split without alpha v in the record (chunked-split-vin.ts:
# -vi, -vi-w512, -vib-w512 over 64 and 32 values; the 32-value w512 / 256 split walks beside them). Gated DeltaNet:
# auto's split-v64-a512-iw-ios-w512 and the same with the -wq walk. Built in a clean worktree of a commit (REV, default
# HEAD) so that no uncommitted edit enters.
#   here:   bash bench/cuda/chunked/build-run29.sh   -> dist/chunked-plans-run29, dist/chunked-check-run29.mjs
set -euo pipefail
RUN=${RUN:-29}
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run$RUN-XXXX)
git worktree add -q --detach "$WT/wt" "${REV:-HEAD}"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
mkdir -p "$ROOT/dist" && git rev-parse HEAD > "$ROOT/dist/chunked-run$RUN.rev"
export SEQC_PLANS=$ROOT/dist/chunked-plans-run$RUN
rm -rf "$SEQC_PLANS"
SEQC_BUILD_MODELS=simple_gla,gated_deltanet SEQC_BUILD_VARIANTS='^chunked-(split-bf16-k128-v(64|32)(-vi|-vib)?(-w512)?|split-bf16-k128-v64-a512-iw-ios(-wq)?-w512)-r1$' \
  npx tsx bench/cuda/chunked/build.ts
grep -h -A2 "Function properties for " "$SEQC_PLANS"/*.resources.txt 2>/dev/null | grep -v "^--" | paste - - - | sed -E 's/ptxas info *: //g; s/Function properties for seqc_//; s/ +/ /g' | grep -i spill | grep -v " 0 bytes spill" || echo "no spills reported"
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run$RUN.mjs --log-level=warning
ls "$SEQC_PLANS"
du -sh $SEQC_PLANS $ROOT/dist/chunked-check-run$RUN.mjs
