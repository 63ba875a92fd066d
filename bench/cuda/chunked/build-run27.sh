#!/usr/bin/env bash
# Run 27's plans (bench/cuda/chunked/run27.sh): HEAD's auto picks at all 18 (model, shape) cases (test/cuda-chunked.test.ts,
# after e574f3c: the delta rule's -a512-iw-ios at K = 128) plus, at K = 64, DeltaNet's and Gated DeltaNet's split
# -a512-iw-ios (on request; faster than auto's -a512-iw in run 26b's one call). Built in a clean worktree of a commit
# (REV, default HEAD) so that no uncommitted edit enters; only these variants.
#   here:   bash bench/cuda/chunked/build-run27.sh   -> dist/chunked-plans-run27, dist/chunked-check-run27.mjs
set -euo pipefail
RUN=${RUN:-27}
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run$RUN-XXXX)
git worktree add -q --detach "$WT/wt" "${REV:-HEAD}"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
mkdir -p "$ROOT/dist" && git rev-parse HEAD > "$ROOT/dist/chunked-run$RUN.rev"
export SEQC_PLANS=$ROOT/dist/chunked-plans-run$RUN
rm -rf "$SEQC_PLANS"
b() { SEQC_BUILD_MODELS=$1 SEQC_BUILD_VARIANTS="^chunked-($2)-r[12]\$" npx tsx bench/cuda/chunked/build.ts; }
b simple_gla 'splitd-bf16-k64-v32|split-bf16-k128-v64|split3-bf16-k128-v32-g4t'
b gla 'split-bf16-k64-v32-mw|split-bf16-k128-v64-a512-mw|split3-bf16-k128-v32-a512-mw-g4t'
b deltanet,gated_deltanet 'split-bf16-k64-v32-a512-iw(-ios)?|split-bf16-k128-v64-a512-iw-ios-w512|split3-bf16-k128-v16-a512-iw-ios-wc'
b rwkv7 'split-bf16-k64-v32-mw|split-bf16-k128-v64-a512-mw|split3-bf16-k128-v8-a512-mw'
b mamba2 'fused-bf16-k64-v64|splitd-bf16-k64-v32|split3-bf16-k64-v64-g4t'
grep -h -A2 "Function properties for .*\(walk\|phaseA\)" "$SEQC_PLANS"/*.resources.txt 2>/dev/null | grep -v "^--" | paste - - - | sed -E 's/ptxas info *: //g; s/Function properties for seqc_//; s/ +/ /g' | grep -i spill | grep -v " 0 bytes spill" || echo "no spills reported"
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run$RUN.mjs --log-level=warning
ls "$SEQC_PLANS"
du -sh $SEQC_PLANS $ROOT/dist/chunked-check-run$RUN.mjs
