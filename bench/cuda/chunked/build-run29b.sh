#!/usr/bin/env bash
# Run 29b's plans (bench/cuda/chunked/run29b.sh): Simple GLA's auto pick since 9f4b7f1 (split-v64-vi-w512) beside the
# pick before it (split-v64-w512), confirming run 29 in a second lease; Gated DeltaNet (4, 8192, 16, 128)'s auto pick
# (split-v64-a512-iw-ios-w512) beside the forms of the plan that were not timed on the H200 at that shape: splitd after
# the -a512-iw phase A (its record leaves Q~ and X~ out, the walk reads q and k), split3 after -a512-iw-ios (-wk-w512,
# -wc), split's 256-thread walk and the -a384 / 256-thread -iw-ios phase A; DeltaNet's auto pick there, for the gate's
# cost per kernel in the same call. Built in a clean worktree of a commit (REV, default HEAD).
#   here:   bash bench/cuda/chunked/build-run29b.sh   -> dist/chunked-plans-run29b, dist/chunked-check-run29b.mjs
# SG / GD override the Simple GLA / delta-rule variant patterns, RUN the plans' name (the -gf phase A's first call:
#   RUN=29c GD='split-bf16-k128-v64-a512-iw-ios(-gf)?-w512' bash bench/cuda/chunked/build-run29b.sh).
set -euo pipefail
RUN=${RUN:-29b}
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run$RUN-XXXX)
git worktree add -q --detach "$WT/wt" "${REV:-HEAD}"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
mkdir -p "$ROOT/dist" && git rev-parse HEAD > "$ROOT/dist/chunked-run$RUN.rev"
export SEQC_PLANS=$ROOT/dist/chunked-plans-run$RUN
rm -rf "$SEQC_PLANS"
SG=${SG:-'split-bf16-k128-v64(-vi)?-w512'}
GD=${GD:-'split-bf16-k128-v64-a(512|384)-iw-ios(-w512)?|splitd-bf16-k128-v(64|32)-a512-iw|split3-bf16-k128-v(64-a512-iw-ios-wk-w512|32-a512-iw-ios-wc|16-a512-iw-ios-wc)'}
SEQC_BUILD_MODELS=simple_gla,gated_deltanet,deltanet SEQC_BUILD_VARIANTS="^chunked-($SG|$GD)-r1\$" npx tsx bench/cuda/chunked/build.ts
grep -h -A2 "Function properties for " "$SEQC_PLANS"/*.resources.txt 2>/dev/null | grep -v "^--" | paste - - - | sed -E 's/ptxas info *: //g; s/Function properties for seqc_//; s/ +/ /g' | grep -i spill | grep -v " 0 bytes spill" || echo "no spills reported"
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run$RUN.mjs --log-level=warning
ls "$SEQC_PLANS"
du -sh $SEQC_PLANS $ROOT/dist/chunked-check-run$RUN.mjs
