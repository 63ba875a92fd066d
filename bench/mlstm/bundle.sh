#!/usr/bin/env bash
# Bundles bench/mlstm/run.ts into dist/mlstm/run.mjs (Node, webgpu and koffi come from .device/).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
npx esbuild bench/mlstm/run.ts --bundle --platform=node --format=esm --target=node20 --external:koffi --external:webgpu \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" \
  --outfile=dist/mlstm/run.mjs --log-level=warning
du -sh dist/mlstm
