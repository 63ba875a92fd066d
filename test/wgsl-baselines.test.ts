/**
 * Baselines of the emitted WGSL and generated TypeScript for a few stdlib models: any change in what
 * seqc emits shows up as a diff here. After an intended change: `npm run accept-baselines`, review, commit.
 */
import { describe, it, expect } from "vitest";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BASELINE_DIR, emitBaselines } from "./wgsl/baselines.ts";

describe("emitted WGSL and TypeScript match test/baselines", async () => {
  const files = await emitBaselines();
  it("no stale baseline files", () => {
    expect(readdirSync(BASELINE_DIR).filter((f) => !files.has(f))).toEqual([]);
  });
  for (const [f, text] of files) {
    it(f, () => {
      const path = join(BASELINE_DIR, f);
      expect(existsSync(path), `${f} has no baseline; run npm run accept-baselines`).toBe(true);
      expect(text, `${f} differs from its baseline; if intended, run npm run accept-baselines`).toBe(readFileSync(path, "utf8"));
    });
  }
});
