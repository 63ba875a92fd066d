/**
 * seqc fmt on mutants of the stdlib: mutations that reshuffle whitespace, add comments,
 * redundant parentheses and semicolons, and the front-end fuzzer's token-level edits. For every
 * mutant that parses: fmt is idempotent, keeps the comments in order and the AST; for every
 * mutant that also resolves without errors: the IR is unchanged.
 */
import { describe, expect, it } from "vitest";
import { unit as rng } from "./helpers/random.ts";
import { seqCorpus } from "./helpers/corpus.ts";
import { formatSeq } from "../compiler/fmt/index.ts";
import { astOf, commentTexts, fmt, irOf } from "./fmt-helpers.ts";


const corpus = seqCorpus;
const snippets = ["(", ")", ",", "sum(i)", "-", "^", ";", "*", "+", "/* x */", "// y\n", "\n\n"];
const spaces = ["", " ", "\n", "\n\n\n", "   ", " /* c */ ", "  // note\n", "\n// own line\n", "/* a\n b */", " ; "];

function mutateOnce(src: string, r: () => number): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const ws = [...src.matchAll(/\s+/g)];
  switch (Math.floor(r() * 6)) {
    case 0: { // reshape a whitespace run: join lines, split them, add comments there
      if (!ws.length) return src;
      const m = pick(ws);
      return src.slice(0, m.index) + pick(spaces) + (r() < 0.5 ? " " : "") + src.slice(m.index! + m[0].length);
    }
    case 1: { // redundant parentheses around an operand
      const ops = [...src.matchAll(/[A-Za-z_]\w*(\[[^\]]*\])?|\d+(\.\d*)?/g)];
      if (!ops.length) return src;
      const m = pick(ops);
      return src.slice(0, m.index) + "(" + m[0] + ")" + src.slice(m.index! + m[0].length);
    }
    case 2: { // parentheses around a whole right-hand side
      const lines = src.split("\n");
      const i = Math.floor(r() * lines.length);
      lines[i] = lines[i].replace(/= (.*?)(\s*\/\/.*)?$/, (_m, e: string, c = "") => `= (${e})${c}`);
      return lines.join("\n");
    }
    case 3: { // insert a snippet at a token boundary
      if (!ws.length) return src;
      const m = pick(ws);
      return src.slice(0, m.index) + " " + pick(snippets) + " " + src.slice(m.index!);
    }
    case 4: { // delete a few characters
      const pos = Math.floor(r() * src.length);
      return src.slice(0, pos) + src.slice(pos + 1 + Math.floor(r() * 4));
    }
    default: { // swap two words
      const words = src.split(/(\s+)/);
      const a = Math.floor(r() * words.length), b = Math.floor(r() * words.length);
      [words[a], words[b]] = [words[b], words[a]];
      return words.join("");
    }
  }
}

describe("seqc fmt on mutants (fuzz)", () => {
  it("idempotent, same comments, same AST for every mutant that parses; same IR for every one that resolves", () => {
    const r = rng(20250611);
    let parsed = 0, resolved = 0, refused = 0;
    for (let n = 0; n < 700; n++) {
      let src = corpus[n % corpus.length];
      const k = 1 + Math.floor(r() * 4);
      for (let j = 0; j < k; j++) src = mutateOnce(src, r);
      const res = formatSeq(src, "f.seq");
      if (!res.ok) {
        refused++;
        expect(res.diagnostics.every((d) => d.code === "SEQ1001" || d.code === "SEQ1002")).toBe(true);
        continue;
      }
      parsed++;
      const once = res.text;
      const ctx = `mutant ${n}:\n${src}\n--- formatted:\n${once}`;
      expect(fmt(once), ctx).toBe(once);
      expect(commentTexts(once), ctx).toEqual(commentTexts(src));
      expect(astOf(once), ctx).toBe(astOf(src));
      const ir = irOf(src);
      if (ir !== null) {
        resolved++;
        expect(irOf(once), ctx).toBe(ir);
      }
    }
    // the corpus must really exercise the formatter, not just the refusal path
    console.log(`fmt fuzz: ${parsed} parsed, ${resolved} resolved, ${refused} refused`);
    expect(parsed).toBeGreaterThan(250);
    expect(resolved).toBeGreaterThan(150);
    expect(refused).toBeGreaterThan(25);
  }, 60_000);
});
