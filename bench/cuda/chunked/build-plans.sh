#!/usr/bin/env bash
# Builds one plan set for a chunked device run (the skeleton of build-run20.sh .. build-run29b.sh; each is a wrapper that
# sets the parameters and calls this) in a clean worktree of a commit, so that no uncommitted edit enters:
# dist/chunked-plans-run$RUN (bench/cuda/chunked/build.ts, only the variants asked for) and the bundle
# dist/chunked-check-run$RUN.mjs (check.ts, esbuild). Parameters (environment):
#   RUN         the name (required)
#   REV         the commit built (default HEAD)
#   BUILD       a line per build.ts call: "models variant-regex" (SEQC_BUILD_MODELS, SEQC_BUILD_VARIANTS; required)
#   COPY_PLANS  globs under dist/ copied into the plans first (run 23b: run 22's other models)
#   REV_FILE    1 (default): dist/chunked-run$RUN.rev holds the built commit; plain: the same without mkdir; 0: none
#   PTXAS_MODE  ptxas' report from *.resources.txt (unset: none): all (every kernel's line; the build fails when there is
#               none), lines (every line), spills (only the kernels that spill); PTXAS: the kernel regex (after
#               "Function properties for "; default every kernel)
#   BUNDLE=0    no bundle;  DU_BUNDLE=0: du leaves the bundle out;  LIST=1: ls the plans
# bench/cuda/chunked/check-run-wrappers.sh checks that every wrapper runs the commands its copy ran before.
#   here:   bash bench/cuda/chunked/build-runNN.sh (each wrapper's header)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
WT=$(mktemp -d /tmp/seqc-run$RUN-XXXX)
git worktree add -q --detach "$WT/wt" "${REV:-HEAD}"
trap 'git worktree remove --force "$WT/wt"; rm -rf "$WT"' EXIT
cd "$WT/wt" && ln -s "$ROOT/node_modules" node_modules
case ${REV_FILE:-1} in
  1) mkdir -p "$ROOT/dist" && git rev-parse HEAD > "$ROOT/dist/chunked-run$RUN.rev" ;;
  plain) git rev-parse HEAD > "$ROOT/dist/chunked-run$RUN.rev" ;;
esac
export SEQC_PLANS=$ROOT/dist/chunked-plans-run$RUN
if [ -n "${COPY_PLANS:-}" ]; then
  rm -rf "$SEQC_PLANS" && mkdir -p "$SEQC_PLANS"
  files=(); for g in $COPY_PLANS; do files+=("$ROOT"/dist/$g); done
  cp "${files[@]}" "$SEQC_PLANS"/
else
  rm -rf "$SEQC_PLANS"
fi
while read -r models variants <&3; do
  [ -n "$models" ] && SEQC_BUILD_MODELS=$models SEQC_BUILD_VARIANTS=$variants npx tsx bench/cuda/chunked/build.ts
done 3<<< "$BUILD"
if [ -n "${PTXAS_MODE:-}" ]; then
  report() { grep -v "^--" | paste - - - | sed -E 's/ptxas info *: //g; s/Function properties for seqc_//; s/ +/ /g'; }
  case ${PTXAS_MODE:-all} in
    all) grep -h -A2 "Function properties for ${PTXAS:-}" "$SEQC_PLANS"/*.resources.txt | report ;;
    lines) grep -h -A2 "Function properties for ${PTXAS:-}" "$SEQC_PLANS"/*.resources.txt | report || true ;;
    spills) grep -h -A2 "Function properties for ${PTXAS:-}" "$SEQC_PLANS"/*.resources.txt 2>/dev/null | report | grep -i spill | grep -v " 0 bytes spill" || echo "no spills reported" ;;
  esac
fi
if [ "${BUNDLE:-1}" != 0 ]; then
  banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
  npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
    --banner:js="$banner" --outfile=$ROOT/dist/chunked-check-run$RUN.mjs --log-level=warning
fi
[ "${LIST:-0}" = 1 ] && ls "$SEQC_PLANS"
if [ "${BUNDLE:-1}" != 0 ] && [ "${DU_BUNDLE:-1}" != 0 ]; then du -sh $SEQC_PLANS $ROOT/dist/chunked-check-run$RUN.mjs; else du -sh $SEQC_PLANS; fi
