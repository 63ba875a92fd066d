#!/usr/bin/env bash
# Builds what the GPU machine runs, here (it has no npm, no network): CUDA plans with PTX for every
# stdlib model and the check models of bench/cuda/models (needs nvcc) in dist/cuda-plans, the bench-only
# sweep plans of the pointwise scans in dist/cuda-sweep, and bench/cuda/check.ts bundled into
# dist/cuda-check.mjs.
# Then: ../shared/device/pack.sh koffi @koromix/koffi-linux-x64   (Node + koffi into .device/)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
mkdir -p dist/cuda-plans
npx tsx compiler/cli/main.ts compile stdlib/*.seq bench/cuda/models/*.seq --target cuda --out dist/cuda-plans >/dev/null
rm -f dist/cuda-plans/*.cu
npx tsx bench/cuda/sweep-plan.ts stdlib/hgrn.seq bench/cuda/models/*.seq
npx esbuild bench/cuda/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" \
  --outfile=dist/cuda-check.mjs --log-level=warning
du -sh dist/cuda-plans dist/cuda-sweep dist/cuda-check.mjs
