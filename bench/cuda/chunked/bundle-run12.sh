#!/usr/bin/env bash
# The bundle of run12.sh: the CUDA check/bench (dist/chunked-check-run12.mjs; Node and koffi come from .device/).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="$banner" --outfile=dist/chunked-check-run12.mjs --log-level=warning
du -sh dist/chunked-plans-run12 dist/chunked-check-run12.mjs
