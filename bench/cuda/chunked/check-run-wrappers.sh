#!/usr/bin/env bash
# Checks that the wrappers build-run20.sh .. build-run29b.sh and run20.sh .. run29b.sh (over build-plans.sh and
# run-plans.sh) run the same commands as the per-run copies they replaced (BASE, default 88459f1, the last commit with
# the copies), with every override their headers and bench/RESULTS.md cite (OLD, REV, RUN, AP, ROUNDS, EXPECT29, GD,
# CHECK29). Each script runs twice, as of BASE and as of the working tree, in the same scratch root with the external
# commands stubbed: git, npx, node, timeout, mktemp, rm, mkdir, ln, cp, du, ls, tar and date log their arguments (npx
# also the SEQC_ environment that build.ts reads, node and timeout that and run9.sh's) and do nothing; tee writes and
# logs when its input ends; python3 runs (the last table, on the recorded result files
# bench/cuda/results/chunked-run$RUN.* or run 27's); grep, sed, tail, paste run. The two logs, with the scripts' output,
# must be equal. Left out: mktemp's name template (the builder names the worktree after RUN, where build-run24.sh / 25 /
# 26 named it after themselves) and the elapsed seconds "t=Ns)" (run26.sh's ncu line reads $SECONDS); nothing else.
#   here:   bash bench/cuda/chunked/check-run-wrappers.sh          (about 1 s a case; exit 1 on any difference)
set -uo pipefail
REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
BASE=${BASE:-88459f1}
W=$(mktemp -d /tmp/seqc-wrappers-XXXX)
trap 'rm -rf "$W"' EXIT
REAL_PY=$(command -v python3) REAL_TEE=$(command -v tee)
mkdir -p "$W/stub" "$W/old/bench/cuda/chunked"
for f in $(git -C "$REPO" ls-tree --name-only "$BASE" bench/cuda/chunked/ | grep -E '/(build-)?run2[0-9]b?\.sh$'); do
  git -C "$REPO" show "$BASE:$f" > "$W/old/$f"
done
envlog() { echo "for v in \$(compgen -e | grep -E '^($1)' | sort); do printf '  %s=%q\\n' \"\$v\" \"\${!v}\"; done >> \"\$TRACE\""; }
for c in git npx node timeout mktemp rm mkdir ln cp du ls tar date tee; do
  case $c in
    npx) body="echo \"$c \$*\" >> \"\$TRACE\"; $(envlog 'SEQC_')" ;;
    node|timeout) body="echo \"$c \$*\" >> \"\$TRACE\"; $(envlog 'SEQC_|RUN$|ROUNDS$|REVERSE_EVEN$|MODELS$|ALL$|EXPECT$|CHECK_EXTRA$|[BWKAC]_END$|OUT$')" ;;
    git) body='echo "git $*" >> "$TRACE"; case "$*" in "rev-parse --show-toplevel") echo "$FAKE";; "rev-parse HEAD") echo 0123456789abcdef;; esac' ;;
    mktemp) body='echo "mktemp" >> "$TRACE"; /bin/mkdir -p "$FAKE/wtmp/wt"; echo "$FAKE/wtmp"' ;;
    date) body='echo "date $*" >> "$TRACE"; echo 1000' ;;
    tee) body="$REAL_TEE \"\$@\"; echo \"tee \$*\" >> \"\$TRACE\"" ;;
    *) body="echo \"$c \$*\" >> \"\$TRACE\"" ;;
  esac
  printf '#!/usr/bin/env bash\n%s\n' "$body" > "$W/stub/$c" && chmod +x "$W/stub/$c"
done
# one trace: $1 the scripts' root, $2 the script, $3 RUN (the plan set's name), $4.. the overrides (VAR=value)
trace() {
  local root=$1 s=$2 run=$3; shift 3
  local F=$W/fake res=$REPO/bench/cuda/results/chunked-run
  rm -rf "$F" && mkdir -p "$F/.device" "$F/out" "$F/dist/chunked-plans-run$run" && : > "$F/.device/enter.sh"
  printf 'ptxas info    : Function properties for seqc_x_walk\n    0 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads\nptxas info    : Used 128 registers\n--\nptxas info    : Function properties for seqc_x_phaseA\n    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\nptxas info    : Used 63 registers\n' > "$F/dist/chunked-plans-run$run/X.resources.txt"
  local r=$run; [ -f "$res$r.chunked-bench.json" ] || r=27
  cp "$res$r.chunked-bench.json" "$F/out/chunked-bench.json"
  [ -f "$res$r.chunked-summary.json" ] && cp "$res$r.chunked-summary.json" "$F/out/chunked-summary.json"
  (cd "$F" && env "$@" PATH="$W/stub:$PATH" TRACE="$W/trace" FAKE="$F" OUT="$F/out" bash "$root/bench/cuda/chunked/$s" >> "$W/trace" 2>&1; echo "exit $?" >> "$W/trace")
  sed -E "s#$root/bench/cuda/chunked/##g; s/t=[0-9]+s\)/t=Ns)/" "$W/trace"; rm -f "$W/trace"
}
bad=0 n=0
check() {
  n=$((n + 1))
  trace "$W/old" "$@" > "$W/a.log"; trace "$REPO" "$@" > "$W/b.log"
  if cmp -s "$W/a.log" "$W/b.log"; then echo "same  $(wc -l < "$W/a.log") lines  $*"
  else echo "DIFF  $*"; diff "$W/a.log" "$W/b.log" | head -20; bad=$((bad + 1)); fi
}
check build-run20.sh 20
check build-run20.sh 20old OLD=52671f6^
check run20.sh 20
check build-run21.sh 21
check run21.sh 21
check build-run22.sh 22
check run22.sh 22
check build-run23b.sh 23b
check build-run23b.sh 23b REV=abc1234
check run23b.sh 23b
check build-run24.sh 24
check build-run24.sh 24b RUN=24b AP='4|8|16'
check run24.sh 24
check run24.sh 24b RUN=24b ROUNDS=3
check build-run25.sh 25
check run25.sh 25
check build-run26.sh 26
check run26.sh 26
check build-run26b.sh 26b
check run26b.sh 26b
check build-run27.sh 27
check build-run27.sh 27 REV=ee80139
check run27.sh 27
check build-run28.sh 28
check run28.sh 28
check build-run29.sh 29
check build-run29.sh 29b RUN=29b
check run29.sh 29
check run29.sh 29b RUN=29b "EXPECT29=simple_gla:s2=split-bf16-k128-v64-vi-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512"
check build-run29b.sh 29b
check build-run29b.sh 29c RUN=29c 'GD=split-bf16-k128-v64-a512-iw-ios(-gf)?-w512'
check run29b.sh 29b
check run29b.sh 29c RUN=29c 'CHECK29=split-bf16-k128-v64(-vi)?-w512|split-bf16-k128-v64-a512-iw-ios(-gf)?-w512'
echo "$((n - bad)) / $n cases the same"
[ $bad = 0 ]
