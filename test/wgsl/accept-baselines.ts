/** `npm run accept-baselines`: rewrite test/baselines from the current compiler (review the diff before committing). */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BASELINE_DIR, emitBaselines } from "./baselines.ts";

mkdirSync(BASELINE_DIR, { recursive: true });
const files = await emitBaselines();
for (const f of readdirSync(BASELINE_DIR)) if (!files.has(f)) rmSync(join(BASELINE_DIR, f));
for (const [f, text] of files) writeFileSync(join(BASELINE_DIR, f), text);
console.log(`wrote ${files.size} baselines to ${BASELINE_DIR}`);
