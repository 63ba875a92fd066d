import { describe, expect, it } from "vitest";
import { unit as rng } from "./helpers/random.ts";
import { seqCorpus } from "./helpers/corpus.ts";
import { loadProgram } from "../compiler/frontend/load.ts";
import { analyzeModel } from "../compiler/analysis/index.ts";
import { formatDiagnostics } from "../compiler/diagnostics.ts";


const corpus = seqCorpus;
const snippets = ["[", "]", "(", ")", "{", "}", ",", "=", "sum(i)", "for n in J {", "let", "state", "x[h]", "@", "1e", "-", "^", "output", "S[h,i,j]", ":", ";"];

function mutate(src: string, r: () => number): string {
  const pos = Math.floor(r() * src.length);
  switch (Math.floor(r() * 4)) {
    case 0: return src.slice(0, pos); // truncate
    case 1: return src.slice(0, pos) + src.slice(pos + 1 + Math.floor(r() * 8)); // delete
    case 2: return src.slice(0, pos) + snippets[Math.floor(r() * snippets.length)] + src.slice(pos); // insert
    default: { // swap two tokens-ish
      const words = src.split(/(\s+)/);
      const a = Math.floor(r() * words.length), b = Math.floor(r() * words.length);
      [words[a], words[b]] = [words[b], words[a]];
      return words.join("");
    }
  }
}

describe("front end robustness (fuzz)", () => {
  it("never throws on mutated inputs: diagnostics or a valid program, each rendered with a position", () => {
    const r = rng(1234);
    let valid = 0;
    for (let n = 0; n < 400; n++) {
      const src = mutate(corpus[n % corpus.length], r);
      const p = loadProgram(["f.seq"], new Map([["f.seq", src]]));
      const text = formatDiagnostics(p.diagnostics, p.sources);
      for (const d of p.diagnostics) expect(d.code).toMatch(/^SEQ\d{4}$/);
      if (p.diagnostics.some((d) => d.severity === "error")) expect(text).toMatch(/f\.seq:\d+:\d+: error SEQ/);
      else {
        valid++;
        for (const m of p.models) analyzeModel(m); // the analysis must accept every valid program
      }
    }
    expect(valid).toBeGreaterThan(0);
  });
});
