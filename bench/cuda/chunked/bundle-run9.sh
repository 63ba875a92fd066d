#!/usr/bin/env bash
# The bundle of run9.sh: the CUDA check/bench (dist/chunked-check-run$RUN.mjs, RUN as in run9.sh, default 9; Node and koffi come from .device/).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
RUN=${RUN:-9}
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=dist/chunked-check-run$RUN.mjs --log-level=warning
du -sh dist/chunked-plans-run$RUN dist/chunked-check-run$RUN.mjs
