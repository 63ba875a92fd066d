#!/usr/bin/env bash
# Run 26's plans (bench/cuda/chunked/run26.sh): DeltaNet and Gated DeltaNet at K = 128 with phase A's record copies and
# alpha v's load beside the inverse (-iw-io, and -iw-ios with M and U0 stored 16 bytes a thread; chunked-phase-a-ovl.ts,
# on request) against auto's picks: split's 512-thread 64-value walk after -a512-iw (auto's at (4, 8192, 16, 128)) and
# split3's 16-value -wc walk after -a384-iw (auto's at (1, 32768, 8, 128)), and split3 -wc after -a512-iw-ios.
# Built in a clean worktree of a commit (REV, default HEAD) so that no uncommitted edit enters.
#   here:   bash bench/cuda/chunked/build-run26.sh   -> dist/chunked-plans-run26, dist/chunked-check-run26.mjs
set -euo pipefail
RUN=${RUN:-26}
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run26-XXXX)
git worktree add -q --detach "$WT/wt" "${REV:-HEAD}"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
mkdir -p "$ROOT/dist" && git rev-parse HEAD > "$ROOT/dist/chunked-run$RUN.rev"
export SEQC_PLANS=$ROOT/dist/chunked-plans-run$RUN
rm -rf "$SEQC_PLANS"
SEQC_BUILD_MODELS=deltanet,gated_deltanet SEQC_BUILD_VARIANTS='^chunked-(split-bf16-k128-v64-a512-iw(-ios?)?-w512|split3-bf16-k128-v16-a384-iw(-ios?)?-wc|split3-bf16-k128-v16-a512-iw-ios-wc)-r1$' \
  npx tsx bench/cuda/chunked/build.ts
grep -h -A2 "Function properties for .*\(walk\|phaseA\)" "$SEQC_PLANS"/*.resources.txt | grep -v "^--" | paste - - - | sed -E 's/ptxas info *: //g; s/Function properties for seqc_//; s/ +/ /g' || true
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run$RUN.mjs --log-level=warning
du -sh $SEQC_PLANS $ROOT/dist/chunked-check-run$RUN.mjs
