#!/usr/bin/env bash
# Bundles the chunked-form GPU check into dist/chunked-check.mjs (Node + koffi come from .device/).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
npx esbuild bench/cuda/chunked/check.ts --bundle --platform=node --format=esm --target=node20 --external:koffi \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" \
  --outfile=dist/chunked-check.mjs --log-level=warning
du -sh dist/chunked-plans dist/chunked-check.mjs
