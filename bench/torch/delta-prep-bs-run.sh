#!/bin/bash
# One card call for the staged prep twins' scores as bf16 mma (config scores: "bf16", commit 9084992; untimed before it):
# bench/torch/delta-prep-run.sh on dist/s14c-bs (git-ignored), built here:
#   before: dist/s14c-t512/before (HEAD 3a0d9cd's DeltaNet / GatedDeltaNet modules, the staged twins at 256 threads:
#           call C2's "before");
#   after:  a clean export of 3a0d9cd with 9084992's delta-prep.ts / delta-prep-staged.ts and DELTA_PREP_MMA_CONFIGS
#           given scores: "bf16": npx tsx bench/torch/build-chunked.ts dist/torch-s14c-bs-after deltanet,gated_deltanet
#           dist/s14c-t512/before (1 image built a model: deltaBwd; its source differs from before's in the prep twins'
#           score products only, checked), its runtime (3a0d9cd's, as call C2's after);
#   bench:  dist/s14c-t512/bench (call C2's scripts).  tar -C dist -czf dist/s14c-bs.tgz s14c-bs
# Device: carry=["dist/s14c-bs.tgz"], command="mkdir -p dist && tar -C dist -xzf dist/s14c-bs.tgz &&
#   OUT=$OUT bash dist/s14c-bs/bench/delta-prep-bs-run.sh"
# A form wins where its kernels are faster at both shapes and its gradients match (then: scores: "bf16" in
# DELTA_PREP_MMA_CONFIGS, compiler/backends/cuda/delta-prep.ts).
set -uo pipefail
HERE=$(dirname "$0")
D=dist/s14c-bs OUT=${OUT:-/tmp/delta-prep-bs-out} BENCH_S=${BENCH_S:-80} bash "$HERE/delta-prep-run.sh"
