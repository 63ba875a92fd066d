#!/usr/bin/env bash
# Builds what bench/cuda/class-chunked.ts needs on the GPU machine: the CUDA plans of SimpleGla, Mamba2 and
# DeltaNet with the chunked backward chain's plans (bench/cuda/class-chunked-plans.ts: float32 forms, sm_90 PTX
# and cubins) in dist/class-chunked, their generated classes (--target ts) in dist/class-chunked-src, and the
# check bundled with the classes into dist/class-chunked.mjs. Then, on the device (carry .device,
# dist/class-chunked, dist/class-chunked.mjs):  source .device/enter.sh && node dist/class-chunked.mjs
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
rm -rf dist/class-chunked dist/class-chunked-src && mkdir -p dist/class-chunked dist/class-chunked-src
models="SimpleGla:simple_gla Mamba2:mamba2 DeltaNet:deltanet"
npx tsx bench/cuda/class-chunked-plans.ts dist/class-chunked $(for m in $models; do printf '%s ' "${m#*:}"; done)
npx tsx compiler/cli/main.ts compile $(for m in $models; do printf 'stdlib/%s.seq ' "${m#*:}"; done) --target ts --out dist/class-chunked-src >/dev/null
{
  echo 'import { run } from "../../bench/cuda/class-chunked.ts";'
  for m in $models; do echo "import { ${m%%:*} } from \"./${m%%:*}.ts\";"; done
  echo "await run({ $(for m in $models; do printf '%s, ' "${m%%:*}"; done) });"
} > dist/class-chunked-src/entry.ts
npx esbuild dist/class-chunked-src/entry.ts --bundle --platform=node --format=esm --target=node20 --external:koffi --external:webgpu \
  --alias:seqc/runtime=./runtime/index.ts \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" \
  --outfile=dist/class-chunked.mjs --log-level=warning
du -sh dist/class-chunked dist/class-chunked.mjs
