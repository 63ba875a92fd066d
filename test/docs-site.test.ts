/** docs/render.ts: the docs as HTML, .seq blocks highlighted with the editors/vscode grammar, every internal link resolving. */
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, readdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { renderDocs } from "../docs/render.ts";
import { docBlocks } from "./doc-blocks.ts";

describe("docs site (docs/render.ts)", () => {
  it("renders every doc; every .seq block is highlighted by the TextMate grammar; every link resolves", async () => {
    const out = mkdtempSync(join(tmpdir(), "seqc-site-"));
    const written = await renderDocs("docs", out);
    const mds = readdirSync("docs").filter((f) => f.endsWith(".md"));
    expect(written.map((w) => basename(w)).sort()).toEqual(mds.map((f) => f.replace(/\.md$/, ".html")).sort());
    for (const md of mds) {
      const html = readFileSync(join(out, md.replace(/\.md$/, ".html")), "utf8");
      const seqBlocks = docBlocks(readFileSync(join("docs", md), "utf8")).filter((b) => b.lang === "seq").length;
      const pres = [...html.matchAll(/<pre class="seq"><code>([\s\S]*?)<\/code><\/pre>/g)];
      expect(pres.length, md).toBe(seqBlocks);
      for (const p of pres) {
        expect(p[1], md).toMatch(/<span class="tm-storage tm-type" title="storage\.type\.(model|function)\.seq">|title="keyword\.control\.import\.seq"/);
        expect(p[1]).not.toMatch(/title="invalid/);
      }
      for (const [, href] of html.matchAll(/href="([^"]+)"/g)) {
        if (/^[a-z]+:/.test(href)) continue;
        const [file, anchor] = href.split("#");
        const target = file ? join(out, file) : join(out, md.replace(/\.md$/, ".html"));
        expect(existsSync(target), `${md}: link ${href}`).toBe(true);
        if (anchor) expect(readFileSync(target, "utf8"), `${md}: link ${href}`).toContain(`id="${anchor}"`);
      }
    }
  });
});
