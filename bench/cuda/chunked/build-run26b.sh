#!/usr/bin/env bash
# Run 26b's plans (bench/cuda/chunked/run26b.sh), run 26's second call after auto took -a512-iw-ios at K = 128 (low rank, a
# scalar or no decay): DeltaNet and Gated DeltaNet with auto's new picks (split -a512-iw-ios-w512, split3 -a512-iw-ios-wc),
# the old ones on request (split -a512-iw-w512, split3 -a384-iw-wc), split's -wq walk after -a512-iw-ios, and at K = 64
# auto's split -a512-iw (v32) beside -a512-iw-ios (on request there). Built in a clean worktree of a commit (REV, default
# HEAD) so that no uncommitted edit enters.
#   here:   bash bench/cuda/chunked/build-run26b.sh   -> dist/chunked-plans-run26b, dist/chunked-check-run26b.mjs
set -euo pipefail
RUN=${RUN:-26b}
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run26b-XXXX)
git worktree add -q --detach "$WT/wt" "${REV:-HEAD}"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
mkdir -p "$ROOT/dist" && git rev-parse HEAD > "$ROOT/dist/chunked-run$RUN.rev"
export SEQC_PLANS=$ROOT/dist/chunked-plans-run$RUN
rm -rf "$SEQC_PLANS"
SEQC_BUILD_MODELS=deltanet,gated_deltanet SEQC_BUILD_VARIANTS='^chunked-(split-bf16-k128-v64-a512-iw(-ios)?(-wq)?-w512|split3-bf16-k128-v16-a(384-iw|512-iw-ios)-wc|split-bf16-k64-v32-a512-iw(-ios)?)-r1$' \
  npx tsx bench/cuda/chunked/build.ts
grep -h -A2 "Function properties for .*\(walk\|phaseA\)" "$SEQC_PLANS"/*.resources.txt | grep -v "^--" | paste - - - | sed -E 's/ptxas info *: //g; s/Function properties for seqc_//; s/ +/ /g' || true
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run$RUN.mjs --log-level=warning
du -sh $SEQC_PLANS $ROOT/dist/chunked-check-run$RUN.mjs
