#!/usr/bin/env bash
# Run 24's plans (bench/cuda/chunked/run24.sh): DeltaNet and Gated DeltaNet at (8, 2048, 16, 64) with auto's pick
# (split-bf16-k64-v32-a512-iw) beside the same variant with phase A software-pipelined over 2, 4, 8 and 16 items a block
# (-ap<M>, chunked-phase-a-pipe.ts; on request). Built in a clean worktree of a commit (REV, default HEAD) so that no
# uncommitted edit enters. RUN (default 24) names the outputs, AP (default '2|4|8|16') the item counts built
# (run 24b: RUN=24b AP='4|8|16', after alpha v's copies moved ahead of the scale pass).
#   here:   bash bench/cuda/chunked/build-run24.sh   -> dist/chunked-plans-run$RUN, dist/chunked-check-run$RUN.mjs
set -euo pipefail
RUN=${RUN:-24} AP=${AP:-2|4|8|16}
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run24-XXXX)
git worktree add -q --detach "$WT/wt" "${REV:-HEAD}"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
mkdir -p "$ROOT/dist" && git rev-parse HEAD > "$ROOT/dist/chunked-run$RUN.rev"
export SEQC_PLANS=$ROOT/dist/chunked-plans-run$RUN
rm -rf "$SEQC_PLANS"
SEQC_BUILD_MODELS=deltanet,gated_deltanet SEQC_BUILD_VARIANTS="^chunked-split-bf16-k64-v32-a512-iw(-ap($AP))?-r1\$" \
  npx tsx bench/cuda/chunked/build.ts
grep -h -A2 "Function properties for .*phaseA" "$SEQC_PLANS"/*.resources.txt | grep -v "^--" | paste - - - | sed -E 's/ptxas info *: //g; s/Function properties for seqc_//; s/ +/ /g' 
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run$RUN.mjs --log-level=warning
du -sh $SEQC_PLANS $ROOT/dist/chunked-check-run$RUN.mjs
